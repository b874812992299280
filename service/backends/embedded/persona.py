"""Words for what the embedded backend inferred: criterion names, descriptions, persona text.

Everything here is generated from the inferred user model and its evidence counts, so the trace
says why (a user who always picked the shorter answer reads "Conciseness" and "chose the
shorter answer in 3 of 3 comparisons").
"""

from __future__ import annotations

from service.backends.embedded.rubric import RELEVANCE, SEMANTIC, UserModel
from service.engine.chain import Persona

# key -> ((name, earns/loses) when the user wants more of it, (name, ...) when less)
_CRITERIA: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "length": (
        ("Thoroughness", "Earns points for complete, detailed answers; loses them for terse ones."),
        (
            "Conciseness",
            "Earns points for short, direct answers; loses them for padding and length.",
        ),
    ),
    "structure": (
        (
            "Clear structure",
            "Earns points for lists, steps and headings; loses them for walls of text.",
        ),
        (
            "Flowing prose",
            "Earns points for plain connected prose; loses them for lists and headings.",
        ),
    ),
    "formality": (
        ("Formal register", "Earns points for precise, formal wording; loses them for slang."),
        (
            "Conversational tone",
            "Earns points for a relaxed, friendly voice; loses them for stiffness.",
        ),
    ),
    "engagement": (
        ("Engagement", "Earns points for addressing the user and asking follow-up questions."),
        ("Directness", "Earns points for answering outright; loses them for questions back."),
    ),
    "caution": (
        ("Caution and safety", "Earns points for care, caveats and refusing harmful requests."),
        (
            "Straight answers",
            "Earns points for answering without hedges, apologies or disclaimers.",
        ),
    ),
    "examples": (
        (
            "Concrete examples",
            "Earns points for examples, cases and code; loses them for abstraction.",
        ),
        (
            "Focus",
            "Earns points for staying on the point; loses them for digressions into examples.",
        ),
    ),
    SEMANTIC: (
        (
            "Alignment with past choices",
            "Earns points for content like the answers this user chose; loses them for content "
            "like the answers they rejected.",
        ),
    )
    * 2,
    RELEVANCE: (
        (
            "Relevance",
            "Earns points for addressing what was asked; loses them for going off-topic.",
        ),
    )
    * 2,
}

_MORE_LESS = {
    "length": ("longer", "shorter"),
    "structure": ("more structured", "less structured"),
    "formality": ("more formal", "more casual"),
    "engagement": ("more engaging", "more direct"),
    "caution": ("more cautious", "less hedged"),
    "examples": ("more example-rich", "more focused"),
}
_CONFIDENT = 0.3  # |coef| below this is not stated in the persona
_AGREEMENT = 0.75  # with history, the share of differing pairs that must agree


def criterion_text(key: str, coef: float) -> tuple[str, str]:
    """(name, description) of the criterion for this key and direction."""
    more, less = _CRITERIA[key]
    return more if coef >= 0 else less


def justification(key: str, coef: float, signed_evidence: float, fact: str) -> str:
    if signed_evidence > 0.25:
        verdict = "fits this user's preference"
    elif signed_evidence < -0.25:
        verdict = "works against this user's preference"
    else:
        verdict = "neutral for this user"
    return f"{fact}; {verdict}."


def _finding(model: UserModel, key: str) -> str | None:
    coef = model.coef.get(key, 0.0)
    if abs(coef) < _CONFIDENT or key not in _MORE_LESS:
        return None
    word = _MORE_LESS[key][0 if coef > 0 else 1]
    higher, moved = model.agreement.get(key, (0, 0))
    agreeing = higher if coef > 0 else moved - higher
    if not model.n_pairs:
        return f"prefers {word} answers (population prior)"
    if moved < 2 or agreeing < _AGREEMENT * moved:
        return None  # only confident conclusions, as the P-GenRM prompt asks
    return f"prefers {word} answers (chose the {word} one in {agreeing} of {moved} comparisons)"


def _sentence(parts: list[str | None], fallback: str) -> str:
    found = [p for p in parts if p]
    return ("; ".join(found) + ".").capitalize() if found else fallback


def persona(model: UserModel) -> Persona:
    unknown = "No confident preference yet" + (
        "." if model.n_pairs else " (no history: population prior)."
    )
    values: list[str | None] = [_finding(model, "caution")]
    if model.coef.get(SEMANTIC, 0.0) > 0:
        values.append(
            f"consistently favours the kind of content they chose over the {model.n_pairs} "
            "answers they rejected"
        )
    return Persona(
        style=_sentence([_finding(model, "formality"), _finding(model, "engagement")], unknown),
        content_structure=_sentence(
            [_finding(model, k) for k in ("length", "structure", "examples")], unknown
        ),
        values=_sentence(values, "Values relevant, helpful answers (population prior)."),
    )
