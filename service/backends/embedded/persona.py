"""Words for what the embedded backend inferred: criterion names, descriptions, persona text.

Generated from the user model and the history's evidence, so a trace says why: a user who
always picked the shorter answer reads "Conciseness" and "chose the shorter answer in 3 of 3
comparisons".
"""

from __future__ import annotations

import numpy as np

from service.backends.embedded.rubric import NEUTRAL, PlannedCriterion
from service.backends.embedded.usermodel import CONTENT, WORDING, UserModel
from service.core.chain import Persona
from service.core.criteria import EMBEDDED

# key -> how a text sits on the criterion when it has more of it, and when less.
_MORE_LESS = {
    "length": ("longer", "shorter"),
    "structure": ("more structured", "less structured"),
    "formality": ("more formal", "more casual"),
    "warmth": ("warmer", "more even in tone"),
    "engagement": ("more engaging", "more direct"),
    "hedging": ("more nuanced", "more confident"),
    "caution": ("more cautious", "less hedged with caveats"),
    "compliance": ("more obliging", "more restrained"),
    "harm": ("franker about harm", "further from harmful content"),
    "examples": ("richer in examples", "sparer with examples"),
    "specificity": ("more specific", "simpler"),
    "relevance": ("closer to the request's words", "more in its own words"),
    CONTENT: ("closer to answers this user chose", "further from answers this user chose"),
    WORDING: ("worded more like answers this user chose", "worded less like them"),
}
# What a persona sentence says a user prefers, per key and direction.
_PREFERS = {
    "length": ("longer, more detailed answers", "shorter answers"),
    "structure": ("structured answers (lists, steps, headings)", "flowing prose over lists"),
    "formality": ("a formal register", "a casual, conversational tone"),
    "warmth": ("a warm, personal tone", "an even, impersonal tone"),
    "engagement": ("answers that engage them and ask back", "direct answers without questions"),
    "hedging": ("nuanced, qualified claims", "confident, committed answers"),
    "caution": ("caution and safety advice", "answers without disclaimers"),
    "compliance": ("answers that take the request on", "restraint over simply complying"),
    "harm": ("frank engagement with sensitive topics", "answers that keep clear of harm"),
    "examples": ("concrete examples", "answers without examples"),
    "specificity": ("specific, detailed wording", "plain, simple wording"),
    "relevance": ("answers that stay on the request's words", "answers in their own words"),
}
_STYLE = ("formality", "warmth", "engagement")
_CONTENT = ("length", "structure", "examples", "specificity")
_VALUES = ("caution", "compliance", "harm", "hedging", "relevance")
_MATTERS = 8  # % weight from which a criterion is worth a persona sentence
_SEPARATES = 0.5  # score points between candidates worth calling a difference (explain.py)


def criterion_text(key: str, direction: float) -> tuple[str, str]:
    more, less = EMBEDDED[key]
    return more if direction >= 0 else less


def justification(
    key: str, direction: float, fact: str, scores: list[float], i: int, standardised: float
) -> str:
    """The measured fact, then where candidate `i` sits against the other candidates, in the
    words of the side its score is on: the higher-scored one always reads as the side this user
    prefers, so a justification never contradicts its score."""
    if key == NEUTRAL:
        return "The candidates do not differ on what this user's preferences weigh."
    more, less = _MORE_LESS[key]
    wanted, unwanted = (more, less) if direction >= 0 else (less, more)
    others = [s for j, s in enumerate(scores) if j != i]
    if others:
        above = sum(scores[i] - s >= _SEPARATES for s in others)
        below = sum(s - scores[i] >= _SEPARATES for s in others)
        if not above and not below:
            return f"{fact}: level with {_them(len(others), len(others))} on this."
        if above and below:
            return (
                f"{fact}: {wanted} than {_them(above, len(others))}, as this user prefers, "
                f"but {unwanted} than {_them(below, len(others))}."
            )
        if above:
            return f"{fact}: {wanted} than {_them(above, len(others))}, as this user prefers."
        return f"{fact}: {unwanted} than {_them(below, len(others))}, which this user likes less."
    if standardised > 0.5:
        return f"{fact}: {wanted} than this user's typical answer, as they prefer."
    if standardised < -0.5:
        return f"{fact}: {unwanted} than this user's typical answer, which they like less."
    return f"{fact}: about this user's typical answer."


def _them(n: int, of: int) -> str:
    if of == 1:
        return "the other candidate"
    return "the other candidates" if n == of else f"{n} of the other {of} candidates"


def _finding(model: UserModel, c: PlannedCriterion, k: int) -> str | None:
    if c.weight < _MATTERS or c.key not in _PREFERS:
        return None
    side = 0 if c.direction > 0 else 1
    what, word = _PREFERS[c.key][side], _MORE_LESS[c.key][side]
    if k == 0:
        return f"prefers {what} (learnt prior)"
    # The contribution already carries the user's direction: chosen above rejected = agreement.
    part = model.contributions[c.key]
    gap = part[:k] - part[k : 2 * k]
    moved = np.abs(gap) > 1e-9
    agree = int((gap > 0)[moved].sum())
    if moved.sum() >= 2 and agree < 0.6 * moved.sum():
        return None  # only confident conclusions, as the P-GenRM prompt asks
    total = int(moved.sum())
    if not total:  # none of their pairs differs on it: the evidence is users like them
        return f"prefers {what} (as users with their choices do)"
    return f"prefers {what} (in {agree} of {total} past choices, the answer they chose was {word})"


def _sentence(parts: list[str | None], fallback: str) -> str:
    found = [p for p in parts if p]
    return ("; ".join(found) + ".").capitalize() if found else fallback


def persona(
    model: UserModel, criteria: list[PlannedCriterion], labels: list[str], k: int
) -> Persona:
    by_key = {c.key: c for c in criteria}

    def findings(keys: tuple[str, ...]) -> list[str | None]:
        return [_finding(model, by_key[key], k) for key in keys if key in by_key]

    unknown = "No confident preference here" + ("." if k else " (no history: learnt prior).")
    values = findings(_VALUES)
    top = model.top_expert()
    if k and model.posterior[top] >= 0.5:
        # About the user, in plain words: the profile's own label names training data.
        who = (
            "most users"
            if labels[top].split("/")[-1] == "population"
            else "one group of past users"
        )
        share = model.posterior[top]
        values.append(f"their past choices match those of {who} ({share:.0%} of the evidence)")
    if model.individual_weight >= 0.3:
        values.append(f"judged largely from their own {k} past choices")
    if model.named:
        said = ", ".join(model.named[:3])
        values.append(f"in their own words they value: {said} (from their feedback)")
    return Persona(
        style=_sentence(findings(_STYLE), unknown),
        content_structure=_sentence(findings(_CONTENT), unknown),
        values=_sentence(values, "Values relevant, helpful answers (learnt prior)."),
    )
