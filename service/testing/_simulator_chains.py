"""The simulator's "model": read a P-GenRM prompt, score its candidates, write the chain.

Private to `service.testing.simulator`. It deliberately imports nothing else from `service`: the
chain text comes from its own small templates, so the service's parser is exercised by an
independent writer (as it would be by the real P-GenRM-8B), not by the code it was written
against.

What the simulated user wants is read from the history few-shots with two signals: length
(did the chosen answer tend to be shorter or longer than the rejected one?) and structure (did
it tend to use lists/steps or plain prose?). Those set the rubric's criteria and weights, and
each candidate is scored against them. The noise-free part is computed once per request
(`Evaluator`); each choice then adds its own seeded noise (`Evaluator.choice`).
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
from dataclasses import dataclass

_HISTORY = re.compile(
    r"\[The Start of User's preference history\]\n(.*?)\n\[The End of User's preference history\]",
    re.DOTALL,
)
_TURN = re.compile(r"^(User|System|Assistant|Chosen|Rejected|Feedback): ", re.MULTILINE)
_USER_INPUT = re.compile(
    r"\[The Start of User Input\]\n(.*?)\n\[The End of User Input\]", re.DOTALL
)
_CANDIDATE = re.compile(
    r"\[The Start of Response (\d+)\]\n(.*?)\n\[The End of Response \1\]", re.DOTALL
)
_LIST_LINE = re.compile(r"^[ \t]*(?:[-*\u2022]|\d+[.)]|#+)[ \t]+\S", re.MULTILINE)
_WORD = re.compile(r"[a-z0-9]{4,}")
_SIGNAL = 0.15  # below this strength a preference is treated as no preference
_JSON_START, _JSON_END = "<JSON_START>", "<JSON_END>"
MALFORMED_KINDS = ("truncated", "prose", "empty")


@dataclass(frozen=True)
class Prompt:
    history: tuple[tuple[str, str], ...]  # (chosen, rejected) per few-shot
    user_input: str
    candidates: tuple[str, ...]


def parse_prompt(text: str) -> Prompt:
    """The few-shots, user input and candidates of a P-GenRM prompt (all messages joined).

    A prompt without candidate blocks is still answered, like a real server would: as two empty
    candidates, so the output keeps the usual shape.
    """
    history: list[tuple[str, str]] = []
    block = _HISTORY.search(text)
    if block:
        body = block.group(1)
        marks = list(_TURN.finditer(body))
        turns = [
            (m.group(1), body[m.end() : marks[i + 1].start() if i + 1 < len(marks) else None])
            for i, m in enumerate(marks)
        ]
        for (label, chosen), (next_label, rejected) in itertools.pairwise(turns):
            if label == "Chosen" and next_label == "Rejected":
                history.append((chosen.strip(), rejected.strip()))
    found = _USER_INPUT.search(text)
    blocks = sorted((int(m.group(1)), m.group(2)) for m in _CANDIDATE.finditer(text))
    candidates = tuple(c for _, c in blocks) or ("", "")
    return Prompt(tuple(history), found.group(1) if found else "", candidates)


def _structure(text: str) -> float:
    """1.0 for a list/step layout, 0.5 for several paragraphs, 0.0 for one block of prose."""
    lines = len(_LIST_LINE.findall(text))
    if lines >= 2:
        return 1.0
    return 0.5 if "\n\n" in text.strip() or lines == 1 else 0.0


@dataclass(frozen=True)
class Preference:
    length: float  # -1: always chose the shorter answer ... +1: always the longer
    structure: float  # -1: always chose plain prose ... +1: always lists/steps
    pairs: int
    shorter_chosen: int


def derive_preference(history: tuple[tuple[str, str], ...]) -> Preference:
    """Mean signed, normalised differences between chosen and rejected; 0 without history."""
    if not history:
        return Preference(0.0, 0.0, 0, 0)
    length = structure = 0.0
    shorter = 0
    for chosen, rejected in history:
        a, b = len(chosen), len(rejected)
        length += (a - b) / max(a, b, 1)
        structure += _structure(chosen) - _structure(rejected)
        shorter += a < b
    k = len(history)
    return Preference(length / k, structure / k, k, shorter)


@dataclass(frozen=True)
class Criterion:
    name: str
    weight: int  # percent; a rubric's weights sum to 100
    description: str
    phrases: tuple[str, str, str]  # justification for a low, middling and high score


def _rubric(pref: Preference) -> tuple[Criterion, ...]:
    if pref.length < -_SIGNAL:
        length = Criterion(
            "Conciseness",
            0,
            "short, direct answers win; padding and digressions lose points",
            ("much longer than this user wants", "a little wordy", "direct and to the point"),
        )
    elif pref.length > _SIGNAL:
        length = Criterion(
            "Thoroughness",
            0,
            "detailed, complete answers win; terse replies lose points",
            ("too terse for this user", "covers the basics only", "detailed and complete"),
        )
    else:
        length = Criterion(
            "Appropriate Length",
            0,
            "as long as the question needs and no longer",
            ("length fits poorly", "length is acceptable", "length fits the question"),
        )
    if pref.structure > _SIGNAL:
        layout = Criterion(
            "Clear Structure",
            0,
            "lists and steps that make the answer easy to scan",
            ("a wall of text", "some visible structure", "well organised into steps"),
        )
    elif pref.structure < -_SIGNAL:
        layout = Criterion(
            "Natural Prose",
            0,
            "flowing sentences rather than bullet points",
            ("reads like fragmented notes", "mostly flowing text", "reads naturally"),
        )
    else:
        layout = Criterion(
            "Clarity",
            0,
            "easy to follow on a first read",
            ("hard to follow", "mostly clear", "clear and easy to follow"),
        )
    relevance = Criterion(
        "Relevance",
        0,
        "answers the question that was actually asked",
        ("drifts away from the question", "partly on topic", "squarely on the question"),
    )
    correctness = Criterion(
        "Correctness",
        0,
        "plausible, accurate content without obvious errors",
        ("contains doubtful claims", "mostly sound", "accurate as far as can be told"),
    )
    raw = [30.0, 15.0 + 45.0 * abs(pref.length), 10.0 + 30.0 * abs(pref.structure), 20.0]
    weights = _percentages(raw)
    return tuple(
        Criterion(c.name, w, c.description, c.phrases)
        for c, w in zip((relevance, length, layout, correctness), weights, strict=True)
    )


def _percentages(raw: list[float]) -> list[int]:
    """Integer percentages proportional to `raw`, summing to exactly 100 (largest remainder)."""
    exact = [100 * w / sum(raw) for w in raw]
    out = [int(x) for x in exact]
    for i in sorted(range(len(raw)), key=lambda i: out[i] - exact[i])[: 100 - sum(out)]:
        out[i] += 1
    return out


def _persona(pref: Preference) -> tuple[str, str, str]:
    if not pref.pairs:
        return (
            "No preference history is available; assume a neutral, helpful register.",
            "No evidence about layout or length; judge each answer on its own merits.",
            "Accuracy and relevance to the question come first.",
        )
    evidence = f"(the shorter answer was chosen in {pref.shorter_chosen} of {pref.pairs} pairs)"
    if pref.length < -_SIGNAL:
        style = f"Direct and to the point; prefers brief answers over elaborate ones {evidence}."
    elif pref.length > _SIGNAL:
        style = f"Explanatory and thorough; values detailed, elaborated answers {evidence}."
    else:
        style = f"No clear lean towards short or long answers {evidence}."
    if pref.structure > _SIGNAL:
        layout = "Prefers answers organised as lists or numbered steps."
    elif pref.structure < -_SIGNAL:
        layout = "Prefers flowing prose over bullet points."
    else:
        layout = "No consistent preference between lists and prose."
    return style, layout, "Accuracy and relevance to the question come first."


@dataclass(frozen=True)
class Choice:
    """One sampled chain: integer criterion scores per candidate and their weighted overall."""

    scores: tuple[tuple[int, ...], ...]  # candidate -> criterion -> 1..10
    overall: tuple[float, ...]
    phrases: tuple[tuple[str, ...], ...]


class Evaluator:
    """The noise-free part of one request's evaluation, shared by its n choices."""

    def __init__(self, prompt: Prompt) -> None:
        self.k = len(prompt.candidates)
        self.preference = derive_preference(prompt.history)
        self.criteria = _rubric(self.preference)
        self.persona = _persona(self.preference)
        self.base = self._base_scores(prompt)

    def _base_scores(self, prompt: Prompt) -> list[tuple[float, ...]]:
        pref = self.preference
        asked = set(_WORD.findall(prompt.user_input.lower()))
        sizes = [math.log1p(len(c.split())) for c in prompt.candidates]
        spread = max(sizes) - min(sizes)
        mean_size = sum(sizes) / self.k
        layouts = [_structure(c) for c in prompt.candidates]
        mean_layout = sum(layouts) / self.k
        base: list[tuple[float, ...]] = []
        for text, size, layout in zip(prompt.candidates, sizes, layouts, strict=True):
            z = (size - mean_size) / spread if spread > 0.05 else 0.0
            overlap = len(asked & set(_WORD.findall(text.lower()))) / len(asked) if asked else 0.5
            relevance = 6.0 + 2.0 * overlap if text.strip() else 1.5
            length = 6.0 + 4.0 * pref.length * z
            structure = 6.0 + 4.0 * pref.structure * (layout - mean_layout)
            base.append((relevance, length, structure, 6.5))
        return base

    def choice(self, rng: random.Random, noise: float) -> Choice:
        weights = [c.weight for c in self.criteria]
        scores, overall, phrases = [], [], []
        for base in self.base:
            row = tuple(min(10, max(1, round(b + rng.gauss(0.0, noise)))) for b in base)
            scores.append(row)
            overall.append(round(sum(s * w for s, w in zip(row, weights, strict=True)) / 100, 2))
            phrases.append(
                tuple(
                    c.phrases[0 if s <= 4 else 1 if s <= 7 else 2] + rng.choice(_ENDINGS)
                    for c, s in zip(self.criteria, row, strict=True)
                )
            )
        return Choice(tuple(scores), tuple(overall), tuple(phrases))


_ENDINGS = (".", " for this user.", ", judging by the history.", " given the profile.")


def _number(value: float, as_string: bool) -> float | str:
    return str(value) if as_string else value


def render_text(ev: Evaluator, choice: Choice, *, string_scores: bool = False) -> str:
    """The released free-text format: PART 1 analysis, then `<JSON_START>{...}<JSON_END>`."""
    style, layout, values = ev.persona
    lines = [
        "PART 1: Chain-of-Thought Analysis",
        "",
        "1. User Preference Synthesis",
        f"- Style: {style}",
        f"- Content & Structure: {layout}",
        f"- Core Values: {values}",
        "",
        "2. Personalized Scoring Model Derivation",
    ]
    lines += [f"- {c.name}: {c.description}." for c in ev.criteria]
    rationale = ["A. Evaluation Criteria & Weights:"]
    rationale += [
        f"{i}. {c.name} ({c.weight}%): {c.description}" for i, c in enumerate(ev.criteria, 1)
    ]
    rationale += ["", "B. Scoring Breakdown:"]
    for i, (row, phrases) in enumerate(zip(choice.scores, choice.phrases, strict=True), 1):
        rationale.append(f"Response {i}:")
        rationale += [
            f"- {c.name}: {s}/10. {p[0].upper()}{p[1:]}"
            for c, s, p in zip(ev.criteria, row, phrases, strict=True)
        ]
        terms = " + ".join(
            f"({s} * {c.weight / 100:g})" for c, s in zip(ev.criteria, row, strict=True)
        )
        rationale += [f"Response {i} Final Score = {terms} = {choice.overall[i - 1]:.2f}", ""]
    payload = {
        "rationale": "\n".join(rationale).rstrip(),
        "better_response": {
            f"response_{i}": _number(v, string_scores) for i, v in enumerate(choice.overall, 1)
        },
    }
    return (
        "\n".join(lines)
        + f"\n\nPART 2: Final Scoring and JSON Output\n{_JSON_START}\n"
        + json.dumps(payload, ensure_ascii=False)
        + f"\n{_JSON_END}"
    )


def render_structured(ev: Evaluator, choice: Choice, *, string_scores: bool = False) -> str:
    """The structured-outputs shape: the JSON object alone, `rationale` as an object."""
    style, layout, values = ev.persona
    evaluations = {
        f"response_{i}": {
            "scores": [
                {"criterion": c.name, "score": _number(s, string_scores), "justification": p}
                for c, s, p in zip(ev.criteria, row, phrases, strict=True)
            ]
        }
        for i, (row, phrases) in enumerate(zip(choice.scores, choice.phrases, strict=True), 1)
    }
    payload = {
        "analysis": {"style": style, "content_structure": layout, "values": values},
        "rationale": {
            "criteria": [
                {"name": c.name, "weight": c.weight, "description": c.description}
                for c in ev.criteria
            ],
            "evaluations": evaluations,
        },
        "better_response": {
            f"response_{i}": _number(v, string_scores) for i, v in enumerate(choice.overall, 1)
        },
    }
    return json.dumps(payload, ensure_ascii=False)


def malform(kind: str, text: str, rng: random.Random) -> tuple[str, str]:
    """Break a valid output the way real samples break: (content, finish_reason)."""
    if kind == "empty":
        return "", "stop"
    start = text.find("{")
    if kind == "prose":
        analysis = text[: text.find(_JSON_START)].rstrip() if _JSON_START in text else ""
        verdict = "Overall, Response 1 suits this user best; the others are close behind."
        return (analysis + "\n\nPART 2: Final Scoring\n" + verdict).strip(), "stop"
    cut = start + 1 + int((len(text) - start - 2) * rng.uniform(0.2, 0.9))  # inside the object
    return text[:cut], "length"
