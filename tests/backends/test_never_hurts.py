"""Personalisation never makes a reward worse than ignoring the person: a history that does not
set its user apart from the population leaves the population's ranking, and the reasons a user
gives (`feedback`) name the criteria they value."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from service.backends.embedded._trust import domain_shares, mixed_posterior, trusts
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.feedback import GROUPS, emphasis, named
from service.backends.embedded.params import load_params, with_calibration
from service.backends.embedded.usermodel import ExpertBank
from service.backends.embedded.views import TextViews
from service.core.chain import EvaluationChain
from service.core.embedder import Embedder
from service.core.inputs import PreferencePair
from service.engine.backend import SampleGroup
from service.engine.parsing import parse_chain
from service.engine.scaling import Scaling
from service.engine.scorer import ScoringEngine
from tests.helpers import LONG, QA, SHORT, pair, task

# Candidate sets the population ranks: answers of several lengths, care and relevance.
TASKS = [
    ("How long should I steep green tea?", (LONG, SHORT, "idk, a while")),
    ("How do I boil an egg?", tuple(a for q, s, long in QA[:1] for a in (s, long))),
    (
        "Should cities ban plastic water bottles?",
        (
            "Yes. Bottled water costs hundreds of times more than tap water, and most bottles "
            "are never recycled: they end up in landfills and oceans for centuries.",
            "no",
            "Banning them would hurt people in emergencies who need clean water quickly.",
        ),
    ),
]


@pytest.fixture
async def engine(embedder: Embedder) -> ScoringEngine:
    backend = EmbeddedBackend(lambda: embedder, load_params())
    await backend.start()
    return ScoringEngine(backend)


async def population_history(engine: ScoringEngine) -> tuple[PreferencePair, ...]:
    """Pairs in which the user chose what the population (no history) prefers."""
    history = []
    for question, short, long in QA:
        out = await engine.score("u", (), task(short, long, prompt=question), Scaling(1, 0))
        chosen, rejected = (short, long) if out.preferred == 0 else (long, short)
        history.append(pair(question, chosen, rejected))
    return tuple(history)


def ranking(scores: Sequence[float | None]) -> list[int]:
    return sorted(range(len(scores)), key=lambda i: -(scores[i] or 0.0))


async def test_a_user_who_chooses_like_the_population_gets_the_populations_ranking(
    engine: ScoringEngine,
) -> None:
    history = await population_history(engine)
    for prompt, candidates in TASKS:
        blind = await engine.score("u", (), task(*candidates, prompt=prompt), Scaling(8, 0))
        informed = await engine.score("u", history, task(*candidates, prompt=prompt), Scaling(8, 0))
        assert ranking(informed.scores) == ranking(blind.scores), (prompt, blind, informed)


def test_feedback_names_the_criteria_a_user_values() -> None:
    reasons = [
        "A1 uses examples to explain the argument. A2 has no examples at all, just opinions",
        "A2 gives facts and evidence; A1 is just an insult",
        None,
        "",
    ]
    shares = emphasis(reasons)
    assert shares.shape == (len(GROUPS),)
    got = {GROUPS[j]: float(shares[j]) for j in np.flatnonzero(shares)}
    assert got == {"examples": 0.5, "specificity": 0.5, "harm": 0.5}  # of the 2 real reasons
    assert named(reasons) == ["harm", "examples", "specificity"]  # ties: the rubric's order
    assert not emphasis([None, "  "]).any()  # no reasons: no emphasis


async def test_a_users_reasons_reach_the_persona(engine: ScoringEngine, embedder: Embedder) -> None:
    backend = EmbeddedBackend(lambda: embedder, load_params())
    await backend.start()
    history = tuple(
        PreferencePair(p.context, p.chosen, p.rejected, feedback="it gives a concrete example")
        for p in await population_history(engine)
    )
    group = SampleGroup("ind", "u", history, task(LONG, SHORT), 1, seed=1)
    [completion] = backend.generate_sync(group)
    chain = parse_chain(completion.text, 2)
    assert isinstance(chain, EvaluationChain)
    assert "in their own words they value: examples" in chain.persona.values.lower()


def test_a_history_is_trusted_as_much_as_its_populations_histories_are() -> None:
    """Per-population calibration: the posterior is the mix of the posteriors under each
    population's own trust (population prior, own-model prior, temperature), weighted by how
    well each population explains the history; no history keeps the global values."""
    per = (("dsp", 1, 2.0, 0.0, 4.0), ("ukp_convarg", 1, 2.0, -4.0, 0.25))
    bank = ExpertBank(with_calibration(load_params(), by_population=per))
    assert {"dsp", "ukp_convarg"} <= set(bank.populations)
    rng = np.random.default_rng(0)
    ll = rng.normal(-5.0, 2.0, (1, len(bank.labels)))
    ll_ind, own = np.array([-4.0]), np.array([True])
    ll[0, bank.populations["dsp"]] = 30.0  # the dsp population explains this history far better
    np.testing.assert_allclose(
        mixed_posterior(bank, ll, ll_ind, own, 8), _under(bank, ll, per[0]), atol=1e-12
    )
    ll[0, bank.populations["ukp_convarg"]] = 30.0  # both equally: the mean of the two
    both = (_under(bank, ll, per[0]) + _under(bank, ll, per[1])) / 2
    np.testing.assert_allclose(mixed_posterior(bank, ll, ll_ind, own, 8), both, atol=1e-12)
    # A crowd history that reads a little like dsp's: a small share of dsp's sharp posterior,
    # not a sharper posterior for all of it (the trust values themselves are not mixed).
    ll[0, bank.populations["dsp"]] = 30.0 + np.log(0.1 / 0.9)
    mixed = mixed_posterior(bank, ll, ll_ind, own, 8)
    ukp = _under(bank, ll, per[1])
    assert np.abs(mixed - ukp).sum() <= 2 * 0.1 + 1e-9
    cal = bank.calibration
    [(share, values)] = trusts(bank, None, 1, 0)
    assert float(share[0]) == 1.0
    assert values == (cal.population_bias, cal.individual_bias, cal.temperature)


def test_a_population_trusts_a_history_by_its_size() -> None:
    """Each population's entry for the largest history size it has up to the history's: a
    single pair may be trusted less than eight; a size below every entry keeps the bank's."""
    per = (("dsp", 1, 2.0, 0.0, 0.0), ("dsp", 3, 2.0, 0.0, 1.0), ("dsp", 8, 2.0, 0.0, 4.0))
    bank = ExpertBank(with_calibration(load_params(), by_population=per))
    ll = np.random.default_rng(0).normal(-5.0, 2.0, (1, len(bank.labels)))
    ll[0, bank.populations["dsp"]] = 30.0
    for pairs, temperature in ((1, 0.0), (2, 0.0), (3, 1.0), (7, 1.0), (8, 4.0), (30, 4.0)):
        [(_, values)] = trusts(bank, ll, 1, pairs)
        assert values == (2.0, 0.0, temperature)
    later = ExpertBank(with_calibration(load_params(), by_population=per[1:]))
    cal = later.calibration
    [(_, values)] = trusts(later, ll, 1, 1)
    assert values == (cal.population_bias, cal.individual_bias, cal.temperature)


def test_params_with_one_trust_per_population_load_for_every_size(tmp_path: Path) -> None:
    """Files written before history sizes (four values per population) still load."""
    params = with_calibration(load_params(), by_population=(("dsp", 1, 2.0, 0.0, 4.0),))
    params.save(tmp_path / "p.npz")
    with np.load(tmp_path / "p.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    manifest = json.loads(str(arrays["manifest"]))
    manifest["calibration"]["by_population"] = [["dsp", 2.0, 0.0, 4.0]]
    arrays["manifest"] = np.array(json.dumps(manifest))
    np.savez(tmp_path / "old.npz", **arrays)
    assert load_params(tmp_path / "old.npz").calibration.by_population == (
        ("dsp", 1, 2.0, 0.0, 4.0),
    )


def _under(
    bank: ExpertBank,
    ll: npt.NDArray[np.float64],
    calibration: tuple[str, int, float, float, float],
) -> npt.NDArray[np.float64]:
    """The posterior under one population's trust alone."""
    alone = bank.with_calibration(replace(bank.calibration, by_population=(calibration,)))
    return mixed_posterior(alone, ll, np.array([-4.0]), np.array([True]), 8)


def test_a_history_takes_the_trust_of_the_population_its_texts_are_about() -> None:
    """With population centroids, a history takes the trust of the population most of its
    texts are nearest, whichever population predicts its few choices best: a crowd worker's
    history keeps the crowd's trust."""
    params = load_params()
    width = params.content_dim
    dsp, ukp = np.eye(width, dtype=np.float32)[0], np.eye(width, dtype=np.float32)[1]
    per = (("dsp", 1, 2.0, 0.0, 4.0), ("ukp_convarg", 1, 2.0, -4.0, 0.25))
    bank = ExpertBank(
        replace(
            with_calibration(params, by_population=per),
            centroids={"dsp": np.stack([dsp, -dsp]), "ukp_convarg": ukp[None]},
        )
    )
    assert bank.domains == ["dsp", "ukp_convarg"]
    k = 4
    content = np.tile(0.9 * ukp + 0.1 * dsp, (2 * k + 2, 1)).astype(np.float64)
    views = TextViews(np.zeros((2 * k + 2, 0)), content, None)
    ll = np.random.default_rng(0).normal(-5.0, 2.0, (1, len(bank.labels)))
    ll[0, bank.populations["dsp"]] = 30.0  # dsp's population predicts these choices far better
    shares = domain_shares(bank, views, np.ones((1, k)))
    assert shares is not None
    np.testing.assert_allclose(shares, [[0.0, 1.0]])
    ll_ind, own = np.array([-4.0]), np.array([True])
    np.testing.assert_allclose(
        mixed_posterior(bank, ll, ll_ind, own, k, shares), _under(bank, ll, per[1]), atol=1e-12
    )
    # One pair of four about dsp's kind of text: the majority's trust alone.
    content[0] = content[k] = dsp
    one = domain_shares(bank, TextViews(views.style, content, None), np.ones((1, k)))
    assert one is not None
    np.testing.assert_allclose(one, [[0.0, 1.0]])
    # Half the pairs' answers about dsp's kind of text: half of each population's posterior.
    content[:k:2] = dsp
    content[k : 2 * k : 2] = dsp
    half = domain_shares(bank, TextViews(views.style, content, None), np.ones((1, k)))
    assert half is not None
    np.testing.assert_allclose(half, [[0.5, 0.5]])
    both = (_under(bank, ll, per[0]) + _under(bank, ll, per[1])) / 2
    np.testing.assert_allclose(mixed_posterior(bank, ll, ll_ind, own, k, half), both, atol=1e-12)
    # Resampled histories count their pairs as drawn; no history, no shares.
    drawn = domain_shares(bank, TextViews(views.style, content, None), np.array([[2, 0, 2, 0]]))
    assert drawn is not None
    np.testing.assert_allclose(drawn, [[1.0, 0.0]])
    assert domain_shares(bank, views.head(2), np.ones((1, 0))) is None


def test_population_centroids_survive_a_save_and_load(tmp_path: Path) -> None:
    params = load_params()
    rng = np.random.default_rng(1)
    centroids = {
        name: rng.normal(size=(n, params.content_dim)).astype(np.float32)
        for name, n in (("dsp", 3), ("ukp_convarg", 2))
    }
    replace(params, centroids=centroids).save(tmp_path / "p.npz")
    loaded = load_params(tmp_path / "p.npz").centroids
    assert list(loaded) == ["dsp", "ukp_convarg"]
    for name, vector in centroids.items():
        np.testing.assert_array_equal(loaded[name], vector)
