"""The embedded backend with the real MiniLM embedder: rubric inference, variation, persona."""

from __future__ import annotations

import pytest

from prototypes.embed import Embedder
from service.backends.base import SampleGroup
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import EmbeddedParams, load_params
from service.engine.chain import EvaluationChain
from service.engine.parsing import parse_chain
from service.engine.scaling import Scaling
from service.engine.scorer import ScoringEngine
from tests.helpers import LONG, SHORT, prefers, task


@pytest.fixture
async def backend(embedder: Embedder) -> EmbeddedBackend:
    b = EmbeddedBackend(lambda: embedder, EmbeddedParams())
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


@pytest.mark.parametrize("order", [(LONG, SHORT), (SHORT, LONG)])
async def test_length_preference_decides_the_ranking(
    backend: EmbeddedBackend, order: tuple[str, str]
) -> None:
    engine = ScoringEngine(backend)
    short_index = order.index(SHORT)
    for kind, expected in (("short", short_index), ("long", 1 - short_index)):
        out = await engine.score("u", prefers(kind), task(*order), Scaling(8, 0))
        assert out.preferred == expected, (kind, out.scores)
        assert out.margin > 0.2


def test_short_lover_gets_a_heavy_conciseness_criterion_and_says_so(
    backend: EmbeddedBackend,
) -> None:
    chain = chains(backend, "short", 1, LONG, SHORT)[0]
    weights = {c.name: c.weight for c in chain.criteria}
    assert sum(weights.values()) == pytest.approx(100)
    top = max(weights, key=weights.__getitem__)
    assert top == "Conciseness" and weights[top] >= 25
    assert (
        "shorter" in chain.persona.content_structure and "4 of 4" in chain.persona.content_structure
    )
    long_lover = chains(backend, "long", 1, LONG, SHORT)[0]
    assert "Thoroughness" in {c.name for c in long_lover.criteria}
    assert "longer" in long_lover.persona.content_structure


def test_individual_samples_are_real_variations(backend: EmbeddedBackend) -> None:
    samples = chains(backend, "short", 6, LONG, SHORT)
    distinct = {(tuple((c.name, c.weight) for c in s.criteria), s.overall) for s in samples}
    assert len(distinct) >= 4
    # ...around the same answer: every bootstrap sample still ranks the short answer first
    assert all(s.overall[1] > s.overall[0] for s in samples)


def test_no_history_uses_the_prior_and_still_scores_every_candidate(
    backend: EmbeddedBackend,
) -> None:
    chain = chains(backend, "", 1, LONG, SHORT, "I don't know.")[0]
    assert len(chain.candidates) == 3
    assert all(1 <= c.overall <= 10 for c in chain.candidates)
    assert "population prior" in chain.persona.content_structure
    assert chain.overall[0] > chain.overall[2]  # a full relevant answer beats a non-answer


def test_same_seed_same_chains(backend: EmbeddedBackend) -> None:
    a = [c.raw for c in chains(backend, "short", 3, LONG, SHORT)]
    b = [c.raw for c in chains(backend, "short", 3, LONG, SHORT)]
    assert a == b


def test_params_file_round_trip(tmp_path: pytest.TempPathFactory) -> None:
    path = tmp_path / "params.json"  # type: ignore[operator]
    params = EmbeddedParams(version="test-2", prior_strength=3.5)
    path.write_text(params.to_json())
    assert load_params(path) == params
    with pytest.raises(FileNotFoundError):
        load_params(path.with_name("missing.json"))
