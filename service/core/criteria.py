"""The fixed vocabulary of criterion keys, so traces aggregate across users and requests.

A rubric's criterion names are written for one user ("Conciseness" for one, "Thoroughness" for
another, or whatever an LLM judge chose); its `key` names the dimension ("length") and is the
same for both. The embedded backend's names are listed here per key and direction, so they map
exactly; an LLM's free names map by the words they contain, and a name that matches nothing
stays `other` (its own name is still shown).
"""

from __future__ import annotations

import re

# key -> what a report calls the dimension, whichever way a user leans on it
KEYS: dict[str, str] = {
    "length": "Length",
    "structure": "Structure",
    "formality": "Formality",
    "warmth": "Warmth",
    "engagement": "Engagement",
    "hedging": "Hedging",
    "caution": "Caution",
    "compliance": "Compliance",
    "harm": "Harm",
    "examples": "Examples",
    "specificity": "Specificity",
    "relevance": "Relevance",
    "accuracy": "Accuracy",
    "clarity": "Clarity",
    "helpfulness": "Helpfulness",
    "creativity": "Creativity",
    "humor": "Humour",
    "content": "Content",
    "wording": "Wording",
    "neutral": "No difference",
    "other": "Other",
}
OTHER = "other"

# The embedded backend's criteria: key -> ((name, description) when the user wants more of
# it, (name, description) when less). Names are unique across keys, so they map back exactly.
EMBEDDED: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
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
        ("Even tone", "Earns points for an impersonal, even tone; loses them for gushing."),
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
        ("Few examples", "Earns points for making the point without examples or code."),
    ),
    "specificity": (
        ("Specificity", "Earns points for figures, names and varied, precise vocabulary."),
        ("Simplicity", "Earns points for plain, general wording; loses them for detail overload."),
    ),
    "relevance": (
        ("Relevance", "Earns points for taking up the request's own words and topic."),
        (
            "Own words",
            "Earns points for answering in its own terms rather than echoing the request.",
        ),
    ),
    "content": (
        (
            "Content like past choices",
            "Earns points for content like the answers this user chose; loses them for content "
            "like the answers they rejected.",
        ),
    )
    * 2,
    "wording": (
        (
            "Wording this user favours",
            "Earns points for the vocabulary and phrasing of answers this user chose.",
        ),
    )
    * 2,
    "neutral": (
        (
            "No distinguishing feature",
            "The candidates do not differ on anything this user's preferences weigh.",
        ),
    )
    * 2,
}
_EXACT = {name.lower(): key for key, sides in EMBEDDED.items() for name, _ in sides}

# An LLM's free names, by the words in them; the first match wins, so the specific come first.
_PATTERNS: tuple[tuple[str, str], ...] = (
    ("neutral", r"no distinguishing"),
    ("harm", r"harm|toxic|violen|frank|offensive"),
    ("caution", r"safe|caution|disclaim|responsib|ethic"),
    ("warmth", r"warm|empath|friendly tone|enthusias|caring|compassion|emotion|motivat|encourag"),
    ("humor", r"humou?r|funny|wit\b|witty|joke|playful"),
    ("creativity", r"creativ|original|novel|imaginat|vivid|imagery|catch|memorab|rhyme"),
    ("engagement", r"engag|interactiv|follow.?up|direct"),
    ("hedging", r"nuanc|hedg|confiden|certain|balanced"),
    ("compliance", r"complian|willing|instruction|obey|restrain"),
    ("examples", r"example|illustrat|concrete|code|analog"),
    (
        "length",
        r"concis|brev|brief|succinct|length|thorough|detail|complete|comprehensive|depth|coverage",
    ),
    ("structure", r"structur|format|organi[sz]|layout|prose|readab"),
    ("formality", r"formal|register|tone|professional|casual|conversational|style|polite"),
    ("specificity", r"specific|precis|simplic|simple|jargon|technical"),
    ("relevance", r"relevan|on.?topic|focus|address|own words"),
    ("accuracy", r"accura|correct|factual|truth|honest|reliab|faithful"),
    ("clarity", r"clari|clear|understandab|coheren|logic|plain|beginner|fluen"),
    ("helpfulness", r"help|useful|practical|actionab"),
    ("content", r"content|substance|information|knowledge"),
    ("wording", r"wording|phrasing|vocabular|language"),
)
_COMPILED = tuple((key, re.compile(pattern, re.IGNORECASE)) for key, pattern in _PATTERNS)


def criterion_key(name: str) -> str:
    """The vocabulary key of a criterion name: exact for the embedded backend's names, by
    keyword for an LLM's, `other` when nothing matches."""
    cleaned = " ".join(name.split()).lower()
    exact = _EXACT.get(cleaned)
    if exact is not None:
        return exact
    for key, pattern in _COMPILED:
        if pattern.search(cleaned):
            return key
    return OTHER
