"""`explain` and the criterion vocabulary, on chains as an LLM judge writes them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.core.chain import CandidateEvaluation, Criterion, CriterionScore, EvaluationChain
from service.core.criteria import EMBEDDED, KEYS, criterion_key
from service.engine.explain import explain, weighted_by_key
from service.engine.parsing import parse_chain

GOLDEN = Path(__file__).parent / "golden"


def chain(criteria: list[tuple[str, float]], scores: list[list[float]]) -> EvaluationChain:
    rubric = tuple(Criterion(name=n, weight=w) for n, w in criteria)
    candidates = []
    for row in scores:
        overall = sum(s * w for s, (_, w) in zip(row, criteria, strict=True)) / 100
        candidates.append(
            CandidateEvaluation(
                scores=tuple(
                    CriterionScore(criterion=n, score=s)
                    for s, (n, _) in zip(row, criteria, strict=True)
                ),
                overall=overall,
            )
        )
    return EvaluationChain(criteria=rubric, candidates=tuple(candidates))


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Brevity", "length"),
        ("Appropriate Length", "length"),
        ("Humor", "humor"),
        ("Factual Accuracy", "accuracy"),
        ("Clarity", "clarity"),
        ("Empathy", "warmth"),
        ("Use of Examples", "examples"),
        ("Zorblax", "other"),
        ("Clear structure", "structure"),
        ("Own words", "relevance"),
        ("Budget Friendliness", "other"),
        ("Motivational Tone", "warmth"),
        ("Plain-Language Explanation", "clarity"),
    ],
)
def test_free_criterion_names_map_to_the_vocabulary(name: str, key: str) -> None:
    assert criterion_key(name) == key
    assert Criterion(name=name, weight=10).key == key
    assert CriterionScore(criterion=name, score=5).key == key


def test_every_embedded_name_maps_back_to_its_own_key() -> None:
    for key, sides in EMBEDDED.items():
        assert key in KEYS
        for name, _ in sides:
            assert criterion_key(name) == key, name
            assert criterion_key(name.upper()) == key


def test_a_heavy_criterion_that_gives_both_the_same_score_is_marked_not_led_with() -> None:
    """The issue's example: the 26% criterion gave both candidates 4.8."""
    c = chain(
        [("Relevance", 26), ("Conciseness", 20), ("Warmth", 54)], [[4.8, 8, 6], [4.8, 3, 6.2]]
    )
    explained = explain(c)
    assert explained.separates == (False, True, False)
    assert explained.why[0] == (
        "Ranked 1 of 2, mainly on Conciseness (8 against 3 for the other candidate)."
    )
    assert explained.why[1].startswith("Ranked 2 of 2, held back mainly by Conciseness")


def test_level_candidates_and_a_lone_candidate_say_so() -> None:
    level = explain(chain([("Clarity", 100)], [[6.0], [6.2]]))
    assert level.separates == (False,)
    assert level.why[0] == "Level with the other candidate: no criterion separates them."
    alone = explain(chain([("Clarity", 50), ("Humor", 50)], [[8.0, 3.0]]))
    assert alone.separates == (None, None)
    assert alone.why[0] == "The only candidate: strongest on Clarity (8), weakest on Humor (3)."


def test_weighted_by_key_sums_to_the_overall_and_merges_shared_keys() -> None:
    c = chain([("Brevity", 30), ("Conciseness", 20), ("Humor", 50)], [[8, 6, 2], [2, 4, 9]])
    rows = weighted_by_key(c)
    assert rows[0] == pytest.approx({"length": 3.6, "humor": 1.0})
    for row, candidate in zip(rows, c.candidates, strict=True):
        assert sum(row.values()) == pytest.approx(candidate.overall)


def test_an_llm_judges_chains_get_keys_and_explanations_from_the_parser() -> None:
    """The golden samples are real-looking 8B judge outputs with free criterion names."""
    expected = json.loads((GOLDEN / "expected.json").read_text())
    keys: list[str] = []
    for name, spec in expected.items():
        if "criteria" not in spec:
            continue
        chain = parse_chain((GOLDEN / name).read_text(encoding="utf-8"), spec["n_candidates"])
        assert isinstance(chain, EvaluationChain), name
        for criterion in chain.criteria:
            assert criterion.key == criterion_key(criterion.name) and criterion.key in KEYS
            keys.append(criterion.key)
        for candidate in chain.candidates:
            assert [s.key for s in candidate.scores] == [
                c.key for c in chain.criteria if c.name in {s.criterion for s in candidate.scores}
            ]
        assert len(explain(chain).why) == spec["n_candidates"]
    assert len(keys) >= 40
    assert keys.count("other") < len(keys) / 2  # most free names land on a shared key
