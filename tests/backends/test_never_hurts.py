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

from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.feedback import GROUPS, emphasis, named
from service.backends.embedded.params import load_params, with_calibration
from service.backends.embedded.usermodel import ExpertBank, _posterior, _trust
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
        _posterior(bank, ll, ll_ind, own, 8), _under(bank, ll, per[0]), atol=1e-12
    )
    ll[0, bank.populations["ukp_convarg"]] = 30.0  # both equally: the mean of the two
    both = (_under(bank, ll, per[0]) + _under(bank, ll, per[1])) / 2
    np.testing.assert_allclose(_posterior(bank, ll, ll_ind, own, 8), both, atol=1e-12)
    # A crowd history that reads a little like dsp's: a small share of dsp's sharp posterior,
    # not a sharper posterior for all of it (the trust values themselves are not mixed).
    ll[0, bank.populations["dsp"]] = 30.0 + np.log(0.1 / 0.9)
    mixed = _posterior(bank, ll, ll_ind, own, 8)
    ukp = _under(bank, ll, per[1])
    assert np.abs(mixed - ukp).sum() <= 2 * 0.1 + 1e-9
    cal = bank.calibration
    [(share, values)] = _trust(bank, None, 1, 0)
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
        [(_, values)] = _trust(bank, ll, 1, pairs)
        assert values == (2.0, 0.0, temperature)
    later = ExpertBank(with_calibration(load_params(), by_population=per[1:]))
    cal = later.calibration
    [(_, values)] = _trust(later, ll, 1, 1)
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
    return _posterior(alone, ll, np.array([-4.0]), np.array([True]), 8)
