"""Property tests for `parse_chain`: any text in, a chain or a typed failure out, never a crash.

A chain that comes out must be usable as is: one candidate per response asked for, every overall
within 1-10, weights summing to 100. `internal_error` is the parser's catch-all for its own bugs,
so it must never be produced either.
"""

from __future__ import annotations

import json
import os
import time
import typing
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service.core.chain import (
    CandidateEvaluation,
    Criterion,
    CriterionScore,
    EvaluationChain,
    ParseFailure,
    Persona,
    RecoveryFlag,
)
from service.engine.parsing import ScoredSample, parse_chain, parse_scores
from service.engine.render import render_chain, rounded_weights

# The fast tier (scripts/test --fast) draws a quarter of the examples.
SCALE = 4 if os.environ.get("PGENRM_FAST_TESTS") == "1" else 1
FAST = settings(
    max_examples=200 // SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
ALL_FLAGS = set(typing.get_args(RecoveryFlag))

FRAGMENTS = [
    "<JSON_START>", "<JSON_END>", "</JSON_END>", "<json start>", "```json", "```",
    "{", "}", "[", "]", '"', "'", ":", ",", " ", "\n", "\\n", "\\", "\t", "*", "**", "- ", "#",
    '"rationale"', '"better_response"', '"scores"', "rationale", "better_response",
    '"response_1"', '"response_2"', '"response_3"', "'response_1'", "response_1", "Response 1",
    "Response 2:", '"criteria"', '"evaluations"', '"name"', '"weight"', '"score"', '"criterion"',
    "0", "1", "7", "8.5", "10", "10.0", "85", "-1", "1e999", "NaN", "null", "true", '"7"',
    '"35%"', "35%", "0.35", "7/10", '"7.5/10"', "(40%)", "(Weight: 0.4)", "\u2014", "\u201c",
    "A. Evaluation Criteria & Weights:", "B. Scoring Breakdown:", "1. Clarity (40%): clear",
    "2. Tone (60%): warm", "- Clarity: 8/10. good", "- Tone: 3/10. cold",
    "Final Score = (8 * 0.4) + (3 * 0.6) = 5.0", "= 12", "- **Style:** formal",
    "Content & Structure: lists", "Core Values: accuracy", "PART 1", "PART 2",
]  # fmt: skip


def fragment_text(fragments: list[str] = FRAGMENTS) -> st.SearchStrategy[str]:
    piece = st.sampled_from(fragments) | st.text(max_size=4)
    return st.lists(piece, max_size=40).map("".join)


def check_outcome(outcome: object, k: int) -> None:
    assert isinstance(outcome, EvaluationChain | ParseFailure)
    if isinstance(outcome, ParseFailure):
        assert outcome.reason != "internal_error", outcome.detail
        return
    assert len(outcome.candidates) == k
    for candidate in outcome.candidates:
        assert 1.0 <= candidate.overall <= 10.0
        for score in candidate.scores:
            assert 1.0 <= score.score <= 10.0
    if outcome.criteria:
        assert abs(sum(c.weight for c in outcome.criteria) - 100.0) <= 0.01
        assert all(c.weight >= 0 for c in outcome.criteria)
    assert set(outcome.flags) <= ALL_FLAGS
    assert len(set(outcome.flags)) == len(outcome.flags)


# --- (a): any text at all -----------------------------------------------------------------------

k_values = st.integers(min_value=1, max_value=5)
finish_reasons = st.sampled_from([None, "stop", "length"])


@FAST
@given(text=st.text(), k=k_values, finish_reason=finish_reasons)
@example(text="", k=2, finish_reason=None)
@example(text="{" * 3000, k=2, finish_reason="length")
@example(text="<JSON_START>" * 50, k=2, finish_reason=None)
def test_arbitrary_text_never_raises(text: str, k: int, finish_reason: str | None) -> None:
    check_outcome(parse_chain(text, k, finish_reason), k)


@FAST
@given(text=fragment_text(), k=k_values, finish_reason=finish_reasons)
def test_fragment_soup_never_raises(text: str, k: int, finish_reason: str | None) -> None:
    check_outcome(parse_chain(text, k, finish_reason), k)


# --- (b): chain-shaped output, usually nearly valid, damaged the ways models damage it ----------


def _hostile_value() -> st.SearchStrategy[Any]:
    number = st.floats(min_value=-5, max_value=120, allow_nan=False) | st.integers(-5, 120)
    return (
        number
        | number.map(str)
        | number.map(lambda n: f"{n}%")
        | st.sampled_from([None, True, "N/A", "Better", [], {}, float("nan"), float("inf")])
    )


@st.composite
def _score_value(draw: st.DrawFn) -> Any:
    """Mostly a plausible 1-10 score (a number or a string), sometimes anything at all."""
    pick = draw(st.integers(0, 9))
    if pick < 6:
        return draw(st.floats(1, 10) | st.integers(1, 10))
    if pick < 8:
        return f"{draw(st.floats(1, 10)):.1f}"
    return draw(_hostile_value())


def _weight() -> st.SearchStrategy[str]:
    return (
        st.integers(0, 100).map(lambda w: f"({w}%)")
        | st.integers(0, 100).map(lambda w: f": {w}%")
        | st.integers(0, 10).map(lambda w: f"(Weight: 0.{w})")
        | st.sampled_from(["(" + "9" * 400 + "%)", "(35 %)", ""])
    )


@st.composite
def _text_rationale(draw: st.DrawFn, k: int) -> str:
    names = draw(
        st.lists(st.sampled_from(["Clarity", "Warm Tone", "Accuracy", "clarity"]), max_size=4)
    )
    lines = ["A. Evaluation Criteria & Weights:"]
    lines += [f"{i}. {n} {draw(_weight())}: why" for i, n in enumerate(names, 1)]
    lines.append(draw(st.sampled_from(["B. Scoring Breakdown:", "", "Scoring Breakdown"])))
    for r in range(1, draw(st.integers(0, k + 1)) + 1):
        lines.append(f"Response {r}:")
        lines += [f"- {n}: {draw(st.integers(0, 12))}/10. ok" for n in names if draw(st.booleans())]
        terms = [f"({draw(st.integers(0, 12))} * 0.{draw(st.integers(0, 9))})" for _ in names]
        lines.append(f"Response {r} Final Score = {' + '.join(terms)} = {draw(st.integers(0, 99))}")
    text = "\n".join(lines)
    return draw(st.sampled_from([text, text.replace("\n", " "), text + draw(fragment_text())]))


def _structured_rationale(k: int) -> st.SearchStrategy[dict[str, Any]]:
    names = st.sampled_from(["Clarity", "Tone", "Accuracy", "", "clarity", "Clarity "])
    weight = st.integers(0, 60) | st.floats(0, 1) | _hostile_value()
    criterion = st.fixed_dictionaries(
        {"name": names | st.integers(), "weight": weight},
        optional={"description": st.text(max_size=10) | st.none()},
    )
    score = st.fixed_dictionaries(
        {"criterion": names | st.none(), "score": _score_value()},
        optional={"justification": st.text(max_size=10)},
    )
    evaluation = st.fixed_dictionaries({"scores": st.lists(score, max_size=4) | st.just("x")})
    keys = st.sampled_from([f"response_{i}" for i in range(1, k + 2)] + ["Response 1", "x"])
    return st.fixed_dictionaries(
        {},
        optional={
            "criteria": st.lists(criterion | st.integers(), max_size=4) | st.just({}),
            "evaluations": st.dictionaries(keys, evaluation | st.none(), max_size=k + 1)
            | st.just([]),
        },
    )


def _encodings(obj: dict[str, Any]) -> list[str]:
    text = json.dumps(obj)
    return [
        text,
        json.dumps(obj, indent=2),
        text.replace("}", ", }"),  # trailing commas
        repr(obj),  # a Python-literal dict
        text.replace("\\n", "\n"),  # real line breaks inside strings
        text[: len(text) // 2],  # cut off
    ]


_FRAMES = [
    "{a}<JSON_START>\n{b}\n<JSON_END>{c}",
    "{a}<JSON_START>\n```json\n{b}\n```\n<JSON_END>{c}",
    "{a}<JSON_START><JSON_START>{b}{c}",
    "{a}\n{b}{c}",
]


@st.composite
def chain_cases(draw: st.DrawFn) -> tuple[str, int]:
    k = draw(st.integers(min_value=1, max_value=4))
    n_keys = draw(st.sampled_from([k, k, k, k, max(k - 1, 0), k + 1]))
    key = draw(st.sampled_from(["response_{}", "response_{}", "Response {}", "{}"]))
    better: Any = {key.format(i): draw(_score_value()) for i in range(1, n_keys + 1)}
    if draw(st.integers(0, 9)) == 0:
        better = draw(_hostile_value() | st.just("response_1"))
    kind = draw(st.integers(0, 5))
    rationale = draw(
        _text_rationale(k)
        if kind < 3
        else _structured_rationale(k)
        if kind == 3
        else st.none() | fragment_text()
    )
    obj: dict[str, Any] = {"rationale": rationale, "better_response": better}
    if draw(st.integers(0, 9)) == 0:
        del obj[draw(st.sampled_from(["rationale", "better_response"]))]
    body = draw(st.sampled_from(_encodings(obj)))
    analysis = draw(st.sampled_from(["", "- **Style:** formal\n"]) | fragment_text())
    frame = draw(st.sampled_from(_FRAMES))
    return frame.format(a=analysis, b=body, c=draw(fragment_text())), k


@settings(max_examples=500 // SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=chain_cases())
@example(  # three 10s under weights 33.3 each: float rounding must not push the overall past 10
    case=(
        '<JSON_START>{"rationale": "A. W:\\n1. A (33.3%)\\n2. B (33.3%)\\n3. C (33.3%)\\n'
        'B. Scoring Breakdown:\\nResponse 1:\\n- A: 10\\n- B: 10\\n- C: 10"}<JSON_END>',
        1,
    )
)
@example(  # a weight too large for a float
    case=('{"rationale": "1. A (1%)\\n2. B (' + "9" * 400 + '%)", "better_response": {"1": 5}}', 1)
)
def test_chain_shaped_output_gives_a_usable_chain_or_a_reason(case: tuple[str, int]) -> None:
    text, k = case
    check_outcome(parse_chain(text, k), k)


def _parse_cpu(clean: str, run: str, size: int) -> float:
    """CPU seconds to parse the clean chain with `size` characters of `run` put in three places
    (the best of three tries, so one scheduling hiccup does not count)."""
    junk = run * (size // len(run))
    in_rationale = clean.replace("B. Scoring Breakdown:", "B. Scoring Breakdown:" + junk)
    texts = (junk + clean, in_rationale, clean.replace("Final Score", junk))
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for text in texts:
            check_outcome(parse_chain(text, 2), 2)
        best = min(best, time.process_time() - started)
    return best


def test_degenerate_runs_parse_in_linear_time() -> None:
    """Thousands of blank lines, spaces or asterisks (a looping model) must not backtrack.

    Measured as growth, not as a time limit: 8x the junk may cost about 8x the CPU (linear),
    never the ~64x a quadratic scan would, whatever else the machine is doing."""
    clean = _render(_example_spec())
    for run in ["\n", " ", " \n", "*", " *", "-", "1", " \t", "\\n", "\\n ", "= "]:
        small = _parse_cpu(clean, run, 2_500)
        large = _parse_cpu(clean, run, 20_000)
        growth = large / max(small, 1e-4)
        assert growth < 24, f"parsing grows {growth:.0f}x for 8x the runs of {run!r}"


# --- (c): a rendered chain followed by junk keeps its scores ------------------------------------

_NAMES = ["Clarity", "Factual Accuracy", "Warm Tone", "Conciseness", "Use of Examples", "Depth"]
_WORDS = ["Clear and direct.", "Misses a step.", "Very warm.", "Too long.", "Good example."]
Spec = tuple[list[Criterion], list[CandidateEvaluation]]


def _candidate(criteria: list[Criterion], scores: list[float], words: list[str]) -> Any:
    parts = tuple(
        CriterionScore(criterion=c.name, score=s, justification=w)
        for c, s, w in zip(criteria, scores, words, strict=True)
    )
    overall = sum(s * c.weight for s, c in zip(scores, criteria, strict=True)) / 100
    return CandidateEvaluation(scores=parts, overall=min(10.0, max(1.0, overall)))


@st.composite
def chain_specs(draw: st.DrawFn) -> Spec:
    names = draw(st.lists(st.sampled_from(_NAMES), min_size=1, max_size=5, unique=True))
    raw = draw(st.lists(st.floats(0.5, 10), min_size=len(names), max_size=len(names)))
    criteria = [
        Criterion(name=n, weight=w, description=draw(st.sampled_from(_WORDS)))
        for n, w in zip(names, rounded_weights(raw), strict=True)
    ]
    n = len(criteria)
    candidates = [
        _candidate(
            criteria,
            [s / 10 for s in draw(st.lists(st.integers(10, 100), min_size=n, max_size=n))],
            draw(st.lists(st.sampled_from(_WORDS), min_size=n, max_size=n)),
        )
        for _ in range(draw(st.integers(min_value=1, max_value=4)))
    ]
    return criteria, candidates


def _example_spec() -> Spec:
    criteria = [Criterion(name="Clarity", weight=60), Criterion(name="Warm Tone", weight=40)]
    words = ["Fine.", "Fine."]
    return criteria, [_candidate(criteria, [8, 5], words), _candidate(criteria, [4, 9], words)]


def _render(spec: Spec) -> str:
    persona = Persona(style="Casual.", content_structure="Lists.", values="Accuracy.")
    return render_chain(persona, *spec)


# Junk without a complete chain-shaped object: a later complete `{"rationale": ...}` object is by
# design read as the model's corrected answer (golden sample 29), not as junk.
_JUNK_FRAGMENTS = [f for f in FRAGMENTS if "rationale" not in f and "better_response" not in f]
junk_text = st.text() | fragment_text(_JUNK_FRAGMENTS)


@FAST
@given(spec=chain_specs(), junk=junk_text)
@example(spec=_example_spec(), junk="\n\nResponse 1 is better.")
@example(spec=_example_spec(), junk='{"response_1": 2, "response_2": 9}')
@example(spec=_example_spec(), junk="<JSON_START>\n{")
@example(spec=_example_spec(), junk="```\n- **Style:** formal\nB. Scoring Breakdown:")
def test_trailing_junk_after_end_marker_keeps_the_scores(spec: Spec, junk: str) -> None:
    criteria, candidates = spec
    text = _render(spec)
    clean = parse_chain(text, len(candidates))
    assert isinstance(clean, EvaluationChain)
    assert clean.flags == ()
    assert [(c.name, c.weight) for c in clean.criteria] == [(c.name, c.weight) for c in criteria]
    assert list(clean.overall) == pytest.approx([c.overall for c in candidates], abs=0.01)

    dirty = parse_chain(text + junk, len(candidates))
    assert isinstance(dirty, EvaluationChain), dirty
    assert dirty.criteria == clean.criteria
    assert dirty.candidates == clean.candidates
    assert dirty.persona == clean.persona


# --- the engine's fast path agrees with the full parse ------------------------------------------


def _agree(text: str, k: int, finish_reason: str | None = None) -> None:
    full = parse_chain(text, k, finish_reason)
    fast = parse_scores(text, k, finish_reason)
    if isinstance(full, ParseFailure):
        assert isinstance(fast, ParseFailure) and fast.reason == full.reason
    else:
        assert isinstance(fast, ScoredSample) and fast.overall == full.overall
        assert fast.chain().overall == full.overall


@FAST
@given(case=chain_cases())
def test_fast_scores_agree_with_the_full_parse(case: tuple[str, int]) -> None:
    _agree(*case)


@FAST
@given(text=fragment_text(), k=k_values, finish_reason=finish_reasons)
def test_fast_scores_agree_on_fragment_soup(text: str, k: int, finish_reason: str | None) -> None:
    _agree(text, k, finish_reason)
