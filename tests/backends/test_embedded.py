"""The embedded backend with the real MiniLM embedder: rubric inference, variation, persona."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.features import style_facts
from service.backends.embedded.params import (
    DEFAULT_PARAMS_PATH,
    EmbeddedParams,
    ParamsError,
    load_params,
    prior_params,
)
from service.core.chain import EvaluationChain
from service.core.embedder import Embedder
from service.core.inputs import Message, PreferencePair
from service.engine.backend import SampleGroup
from service.engine.parsing import ScoredSample, parse_chain, parse_scores
from service.engine.scaling import Scaling
from service.engine.scorer import ScoringEngine
from tests.helpers import LONG, SHORT, prefers, task

PARAMS = {"learnt": load_params, "prior": prior_params}


@pytest.fixture(params=list(PARAMS))
async def backend(embedder: Embedder, request: pytest.FixtureRequest) -> EmbeddedBackend:
    b = EmbeddedBackend(lambda: embedder, PARAMS[request.param]())
    await b.start()
    return b


def chains(backend: EmbeddedBackend, kind: str, n: int, *candidates: str) -> list[EvaluationChain]:
    group = SampleGroup("ind", "u", prefers(kind) if kind else (), task(*candidates), n, seed=7)
    out = []
    for completion in backend.generate_sync(group):
        chain = parse_chain(completion.text, len(candidates))
        assert isinstance(chain, EvaluationChain), chain
        assert chain.flags == ()
        out.append(chain)
    return out


def test_the_learnt_parameters_ship_with_the_package() -> None:
    assert DEFAULT_PARAMS_PATH.exists()
    params = load_params()
    assert params.version.startswith("learnt-") and len(params.experts) >= 2
    assert params.manifest["splits_used"] == ["train", "val"]
    assert all(len(d["sha256"]) == 64 for d in params.manifest["data"])


@pytest.mark.parametrize("order", [(LONG, SHORT), (SHORT, LONG)])
async def test_length_preference_decides_the_ranking(
    backend: EmbeddedBackend, order: tuple[str, str]
) -> None:
    engine = ScoringEngine(backend)
    short_index = order.index(SHORT)
    for kind, expected in (("short", short_index), ("long", 1 - short_index)):
        out = await engine.score("u", prefers(kind), task(*order), Scaling(8, 0))
        assert out.preferred == expected, (kind, out.scores)
        assert out.margin is not None and out.margin > 0.2


def test_short_lover_gets_a_heavy_conciseness_criterion_and_says_so(
    backend: EmbeddedBackend,
) -> None:
    chain = chains(backend, "short", 1, LONG, SHORT)[0]
    weights = {c.name: c.weight for c in chain.criteria}
    assert sum(weights.values()) == pytest.approx(100)
    assert weights.get("Conciseness", 0) >= 15
    assert "Conciseness" in sorted(weights, key=weights.__getitem__)[-2:]
    assert (
        "in 4 of 4 past choices, the answer they chose was shorter"
        in chain.persona.content_structure
    )
    long_lover = chains(backend, "long", 1, LONG, SHORT)[0]
    assert "Thoroughness" in {c.name for c in long_lover.criteria}
    assert "the answer they chose was longer" in long_lover.persona.content_structure


def test_criterion_scores_explain_the_overall(backend: EmbeddedBackend) -> None:
    chain = chains(backend, "short", 1, LONG, SHORT)[0]
    conciseness = next(c for c in chain.criteria if c.name == "Conciseness")
    long_score, short_score = (
        next(s.score for s in cand.scores if s.criterion == conciseness.name)
        for cand in chain.candidates
    )
    assert short_score > long_score
    for candidate in chain.candidates:
        weighted = (
            sum(s.score * c.weight for s, c in zip(candidate.scores, chain.criteria, strict=True))
            / 100
        )
        assert candidate.overall == pytest.approx(weighted, abs=1e-6)
        assert all(s.justification.endswith(".") for s in candidate.scores)


@pytest.mark.parametrize("kind", ["short", "long", ""])
def test_scores_given_are_what_the_written_chain_says(backend: EmbeddedBackend, kind: str) -> None:
    """The engine takes the backend's scores without parsing; the text must agree exactly."""
    candidates = (LONG, SHORT, "I don't know.")
    group = SampleGroup("ind", "u", prefers(kind) if kind else (), task(*candidates), 16, seed=3)
    for completion in backend.generate_sync(group):
        assert completion.overall is not None
        parsed = parse_scores(completion.text, len(candidates))
        assert isinstance(parsed, ScoredSample), parsed
        assert parsed.overall == completion.overall


def test_individual_samples_are_real_variations(backend: EmbeddedBackend) -> None:
    samples = chains(backend, "short", 6, LONG, SHORT)
    distinct = {(tuple((c.name, c.weight) for c in s.criteria), s.overall) for s in samples}
    assert len(distinct) >= 4
    # ...around the same answer: the whole-history sample and most bootstrap ones rank the
    # short answer first (a resample that repeats one pair can flip a close call: about 1 in
    # 12 samples over 300 seeds, a rate Ind-N voting is there to absorb)
    assert samples[0].overall[1] > samples[0].overall[0]
    assert sum(s.overall[1] > s.overall[0] for s in samples) >= 5


def test_no_history_still_scores_every_candidate(backend: EmbeddedBackend) -> None:
    chain = chains(backend, "", 1, LONG, SHORT, "I don't know.")[0]
    assert len(chain.candidates) == 3
    assert all(1 <= c.overall <= 10 for c in chain.candidates)
    assert "no history" in chain.persona.style or "learnt prior" in chain.persona.content_structure
    assert chain.overall[0] > chain.overall[2]  # a full relevant answer beats a non-answer


def test_same_seed_same_chains(backend: EmbeddedBackend) -> None:
    a = [c.raw for c in chains(backend, "short", 3, LONG, SHORT)]
    b = [c.raw for c in chains(backend, "short", 3, LONG, SHORT)]
    assert a == b


def test_params_file_round_trip(tmp_path: Path) -> None:
    params = load_params()
    path = tmp_path / "params.npz"
    params.save(path)
    again = load_params(path)
    assert again.version == params.version and len(again.experts) == len(params.experts)
    assert again.calibration == params.calibration
    assert (again.experts[0].wording_index == params.experts[0].wording_index).all()
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ParamsError, match="not an embedded params file"):
        load_params(tmp_path / "junk.npz")


def test_embedder_mismatch_is_a_clear_error(embedder: Embedder) -> None:
    params: EmbeddedParams = load_params()
    with pytest.raises(ParamsError, match="PGENRM_EMBEDDER"):
        params.check_embedder("some/other-model", 1024)
    params.check_embedder(embedder.name, embedder.dim)


def test_identical_candidates_tie_with_a_valid_chain(backend: EmbeddedBackend) -> None:
    group = SampleGroup("ind", "u", (), task(SHORT, SHORT), 2, seed=3)
    for completion in backend.generate_sync(group):
        chain = parse_chain(completion.text, 2)
        assert isinstance(chain, EvaluationChain)
        assert chain.overall[0] == chain.overall[1]
        assert sum(c.weight for c in chain.criteria) == pytest.approx(100)


def test_history_whose_pairs_differ_only_in_content(backend: EmbeddedBackend) -> None:
    # Same style features on both sides: the history model has no style direction at all.
    history = tuple(
        PreferencePair(
            context=(Message("user", f"Name a colour {i}."),), chosen="Blue.", rejected="Red."
        )
        for i in range(3)
    )
    group = SampleGroup("ind", "u", history, task("Blue.", "Red."), 3, seed=1)
    for completion in backend.generate_sync(group):
        assert isinstance(parse_chain(completion.text, 2), EvaluationChain)


@pytest.mark.parametrize("kind", ["short", "long"])
def test_the_persona_is_about_the_user_not_the_training_data(
    backend: EmbeddedBackend, kind: str
) -> None:
    """No dataset, profile or cluster names (what a product reader cannot interpret)."""
    labels = " ".join(backend._bank.labels).replace("/", " ").split()
    for chain in chains(backend, kind, 4, LONG, SHORT):
        persona = " ".join([chain.persona.style, chain.persona.content_structure])
        persona += " " + chain.persona.values
        internal = {label for label in labels if "_" in label or "-" in label or label == "dsp"}
        assert not [label for label in internal if label in persona], persona
        assert "/" not in persona


def test_counted_facts_are_in_the_right_number() -> None:
    one = style_facts("Is it ready? You said so!")
    assert one["engagement"] == "1 question, 1 use of 'you'"
    assert one["warmth"].endswith("1 exclamation")
    assert style_facts("Two words")["length"] == "2 words"
    assert style_facts("Ready? Set? Go!")["engagement"].startswith("2 questions")
