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

# key -> (name, earns/loses) when the user wants more of it, and when less.
_CRITERIA: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "length": (
        ("Thoroughness", "Earns points for complete, detailed answers; loses them for terse ones."),
        ("Conciseness", "Earns points for short, direct answers; loses them for padding."),
    ),
    "structure": (
        (
            "Clear structure",
            "Earns points for lists, steps and headings; loses them for walls of text.",
        ),
        ("Flowing prose", "Earns points for connected prose; loses them for lists and headings."),
    ),
    "formality": (
        ("Formal register", "Earns points for precise, formal wording; loses them for slang."),
        ("Conversational tone", "Earns points for a relaxed voice; loses them for stiffness."),
    ),
    "warmth": (
        ("Warmth", "Earns points for empathy, enthusiasm and a personal voice."),
        ("Neutral tone", "Earns points for an impersonal, even tone; loses them for gushing."),
    ),
    "engagement": (
        ("Engagement", "Earns points for addressing the user and asking follow-up questions."),
        ("Directness", "Earns points for answering outright; loses them for questions back."),
    ),
    "hedging": (
        ("Nuance", "Earns points for qualified, careful claims; loses them for overconfidence."),
        ("Confidence", "Earns points for clear, committed answers; loses them for hedging."),
    ),
    "caution": (
        ("Caution and safety", "Earns points for caveats, safety advice and refusing harm."),
        ("Straight answers", "Earns points for answering without apologies or disclaimers."),
    ),
    "compliance": (
        ("Willingness to help", "Earns points for taking the request on and giving steps."),
        ("Restraint", "Earns points for declining to simply do what was asked."),
    ),
    "harm": (
        ("Frankness", "Earns points for engaging frankly with sensitive or violent topics."),
        ("Harmlessness", "Earns points for keeping clear of harmful or violent content."),
    ),
    "examples": (
        (
            "Concrete examples",
            "Earns points for examples, cases and code; loses them for abstraction.",
        ),
        ("Focus", "Earns points for staying on the point; loses them for digressions."),
    ),
    "specificity": (
        ("Specificity", "Earns points for figures, names and varied, precise vocabulary."),
        ("Simplicity", "Earns points for plain, general wording; loses them for detail overload."),
    ),
    "relevance": (
        ("Relevance", "Earns points for addressing what was asked; loses them for drifting."),
        ("Breadth", "Earns points for context beyond the literal question."),
    ),
    CONTENT: (
        (
            "Content like past choices",
            "Earns points for content like the answers this user chose; loses them for content "
            "like the answers they rejected.",
        ),
    )
    * 2,
    NEUTRAL: (
        (
            "No distinguishing feature",
            "The candidates do not differ on anything this user's preferences weigh.",
        ),
    )
    * 2,
    WORDING: (
        (
            "Wording this user favours",
            "Earns points for the vocabulary and phrasing of answers this user chose.",
        ),
    )
    * 2,
}
_MORE_LESS = {
    "length": ("longer", "shorter"),
    "structure": ("more structured", "less structured"),
    "formality": ("more formal", "more casual"),
    "warmth": ("warmer", "more neutral"),
    "engagement": ("more engaging", "more direct"),
    "hedging": ("more nuanced", "more confident"),
    "caution": ("more cautious", "less hedged"),
    "compliance": ("more obliging", "more restrained"),
    "harm": ("franker", "more harmless"),
    "examples": ("more example-rich", "more focused"),
    "specificity": ("more specific", "simpler"),
    "relevance": ("more on-topic", "broader"),
}
_STYLE = ("formality", "warmth", "engagement")
_CONTENT = ("length", "structure", "examples", "specificity")
_VALUES = ("caution", "compliance", "harm", "hedging", "relevance")
_MATTERS = 8  # % weight from which a criterion is worth a persona sentence


def criterion_text(key: str, direction: float) -> tuple[str, str]:
    more, less = _CRITERIA[key]
    return more if direction >= 0 else less


def justification(fact: str, standardised: float) -> str:
    if standardised > 0.5:
        verdict = "fits this user's preference"
    elif standardised < -0.5:
        verdict = "works against this user's preference"
    else:
        verdict = "about average for this user"
    return f"{fact}; {verdict}."


def _finding(model: UserModel, c: PlannedCriterion, k: int) -> str | None:
    if c.weight < _MATTERS or c.key not in _MORE_LESS:
        return None
    word = _MORE_LESS[c.key][0 if c.direction > 0 else 1]
    if k == 0:
        return f"prefers {word} answers (learnt prior)"
    # The contribution already carries the user's direction: chosen above rejected = agreement.
    part = model.contributions[c.key]
    gap = part[:k] - part[k : 2 * k]
    moved = np.abs(gap) > 1e-9
    agree = int((gap > 0)[moved].sum())
    if moved.sum() >= 2 and agree < 0.6 * moved.sum():
        return None  # only confident conclusions, as the P-GenRM prompt asks
    total = int(moved.sum())
    return f"prefers {word} answers (chose the {word} one in {agree} of {total} comparisons)"


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
