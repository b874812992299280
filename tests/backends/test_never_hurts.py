"""Personalisation never makes a reward worse than ignoring the person: a history that does not
set its user apart from the population leaves the population's ranking, and the reasons a user
gives (`feedback`) name the criteria they value."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.feedback import GROUPS, emphasis, named
from service.backends.embedded.params import load_params, with_calibration
from service.backends.embedded.usermodel import ExpertBank, _trust
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
    """Per-population calibration: the trust (population prior, own-model prior, temperature)
    is the mix of the populations' own, weighted by how well each population explains the
    history; no history keeps the global values."""
    per = (("dsp", 2.0, 0.0, 1.0), ("ukp_convarg", 2.0, -4.0, 0.25))
    bank = ExpertBank(with_calibration(load_params(), by_population=per))
    assert {"dsp", "ukp_convarg"} <= set(bank.populations)
    ll = np.zeros(len(bank.labels))
    ll[bank.populations["dsp"]] = 30.0  # the dsp population explains this history far better
    assert _trusted(bank, ll) == pytest.approx((2.0, 0.0, 1.0), abs=1e-6)
    ll[bank.populations["ukp_convarg"]] = 30.0  # both equally: the mean of the two
    assert _trusted(bank, ll) == pytest.approx((2.0, -2.0, 0.625))
    cal = bank.calibration
    population, individual, temperature = _trust(bank, None, 1)
    assert population is None
    assert (float(individual[0]), float(temperature[0])) == (cal.individual_bias, cal.temperature)


def _trusted(bank: ExpertBank, ll: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    """`_trust` for one history's log-likelihoods."""
    population, individual, temperature = _trust(bank, ll[None], 1)
    assert population is not None
    return float(population[0]), float(individual[0]), float(temperature[0])
