"""Interpretable style features of a response: the measurable half of the embedded rubric.

Each feature is one number per response; features are grouped into criteria (`STYLE_GROUPS`),
whose names flip with the user's direction (a user who prefers low `length` gets
"Conciseness", high gets "Thoroughness"). Pure functions of the text and its prompt; cheap
enough to run on every candidate of every request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from service.core.lru import LRU, digest

Matrix = npt.NDArray[np.float64]


def _words(*phrases: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(phrases) + r")\b", re.IGNORECASE)


_WORD = re.compile(r"[A-Za-z']+|\d+")
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")
_LIST_LINE = re.compile(r"^[ \t]*(?:[-*\u2022+]|\d{1,3}[.)])[ \t]+\S", re.MULTILINE)
_HEADING = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]+\S|\*\*[^*\n]{2,80}\*\*[ \t]*:?[ \t]*$)", re.MULTILINE
)
_CONTRACTION = re.compile(r"\b\w+'(?:s|re|ve|ll|d|m|t)\b", re.IGNORECASE)
_INFORMAL = _words(
    "hey",
    "yeah",
    "yep",
    "nope",
    "gonna",
    "wanna",
    "kinda",
    "sorta",
    "lol",
    "awesome",
    "cool",
    "stuff",
    "okay",
    "ok",
    "folks",
    "guys",
    "haha",
)
_YOU = _words("you", "your", "yours", "yourself")
_HEDGE = _words(
    "might",
    "may",
    "perhaps",
    "possibly",
    "probably",
    "maybe",
    "i think",
    "i believe",
    "not sure",
    "it depends",
    "generally",
    "usually",
    "could be",
)
_REFUSAL = re.compile(
    r"\b(?:i'?m sorry|i am sorry|sorry|i (?:can(?:no|')t|cannot|am unable|won'?t|will not|"
    r"don'?t think i (?:can|should))|not able to|as an ai|i'?m not comfortable|"
    r"not appropriate|inappropriate|i'?d rather not)\b",
    re.IGNORECASE,
)
_REFUSAL_START = re.compile(
    r"^\W*(?:no\b|i'?m sorry|sorry|i (?:can(?:no|')t|cannot|won'?t|don'?t|do not|am not)|"
    r"unfortunately|i'?m not)",
    re.IGNORECASE,
)
_SAFETY = _words(
    "illegal",
    "unsafe",
    "dangerous",
    "harmful",
    "unethical",
    "against the law",
    "safety",
    "consult",
    "professional",
    "doctor",
    "lawyer",
    "police",
    "careful",
    "risk",
    "respect",
)
_MORAL = _words(
    "wrong",
    "should not",
    "shouldn't",
    "not okay",
    "not nice",
    "hurtful",
    "not a good idea",
    "bad idea",
    "immoral",
    "morally",
)
_HARM = _words(
    "kill",
    "murder",
    "steal",
    "stole",
    "drugs?",
    "weapons?",
    "guns?",
    "bomb",
    "poison",
    "hack",
    "rob",
    "fight",
    "hurt",
    "violen(?:ce|t)",
    "sex",
    "porn",
    "racist",
    "cheat",
    "attack",
    "knife",
    "suicide",
    "meth",
    "cocaine",
    "shoot",
)
_COMPLY_START = re.compile(
    r"^\W*(?:sure|yes|yeah|okay|ok|of course|absolutely|certainly|here(?:'s| is| are)|great|"
    r"definitely|happy to)\b",
    re.IGNORECASE,
)
_INSTRUCTION = re.compile(
    r"^[ \t]*(?:\d{1,3}[.)][ \t]*)?(?:first|then|next|just|you can|you could|try|use|get|take|put|"
    r"make|go)\b",
    re.IGNORECASE | re.MULTILINE,
)
_EXAMPLE = re.compile(
    r"```|\b(?:for example|for instance|e\.g\.|such as|example|imagine|consider)\b", re.IGNORECASE
)
_EMPATHY = _words(
    "i understand",
    "understand",
    "feel",
    "feeling",
    "sorry to hear",
    "that sounds",
    "glad",
    "happy to",
    "hope",
)
_FIRST_PERSON = _words("i", "me", "my", "mine", "i'm", "i've", "i'd")
_DIGIT = re.compile(r"\d")

# Criterion key -> the features behind it. The first feature names the direction.
STYLE_GROUPS: dict[str, tuple[str, ...]] = {
    "length": ("log_words", "log_sentences"),
    "structure": ("layout",),
    "formality": ("formality",),
    "engagement": ("questions", "second_person", "opens_with_question"),
    "hedging": ("hedges",),
    "caution": ("refusals", "refusal_opening", "safety_terms", "moralising"),
    "compliance": ("compliant_opening", "instructions"),
    "harm": ("harm_terms", "echoes_prompt_harm"),
    "examples": ("examples",),
    "specificity": ("digits", "vocabulary"),
    "warmth": ("empathy", "exclamations", "first_person"),
    "relevance": ("prompt_overlap",),
}
STYLE_FEATURES: tuple[str, ...] = tuple(f for group in STYLE_GROUPS.values() for f in group)


def _first_terminator(text: str) -> str:
    match = re.search(r"[.!?]", text[:300])
    return match.group() if match else ""


def style_vector(text: str, prompt: str = "") -> list[float]:
    """Raw (unstandardised) feature values, in `STYLE_FEATURES` order."""
    words = _WORD.findall(text)
    n = len(words)
    per100 = 100.0 / max(n, 20)
    sentences = max(1, len(_SENTENCE_END.findall(text)))
    lowered = {w.lower() for w in words}
    prompt_words = {w.lower() for w in _WORD.findall(prompt)}
    avg_word = sum(map(len, words)) / n if n else 0.0
    prompt_harm = {m.lower() for m in _HARM.findall(prompt)}
    values = {
        "log_words": math.log1p(n),
        "log_sentences": math.log1p(sentences),
        "layout": math.log1p(len(_LIST_LINE.findall(text)) + 2 * len(_HEADING.findall(text))),
        "formality": 0.5 * avg_word
        - 1.5 * len(_CONTRACTION.findall(text)) * per100
        - 2.0 * len(_INFORMAL.findall(text)) * per100,
        "exclamations": text.count("!") * per100,
        "questions": text.count("?") / sentences,
        "second_person": len(_YOU.findall(text)) * per100,
        "opens_with_question": float(_first_terminator(text) == "?"),
        "hedges": math.log1p(len(_HEDGE.findall(text)) * per100),
        "refusals": math.log1p(len(_REFUSAL.findall(text))),
        "refusal_opening": float(bool(_REFUSAL_START.search(text))),
        "safety_terms": math.log1p(len(_SAFETY.findall(text)) * per100),
        "moralising": math.log1p(len(_MORAL.findall(text)) * per100),
        "compliant_opening": float(bool(_COMPLY_START.search(text))),
        "instructions": math.log1p(len(_INSTRUCTION.findall(text))),
        "harm_terms": math.log1p(len(_HARM.findall(text)) * per100),
        "echoes_prompt_harm": float(bool(prompt_harm & {m.lower() for m in _HARM.findall(text)})),
        "examples": math.log1p(len(_EXAMPLE.findall(text))),
        "digits": math.log1p(len(_DIGIT.findall(text))),
        "vocabulary": len(lowered) / max(1, n),
        "empathy": math.log1p(len(_EMPATHY.findall(text)) * per100),
        "first_person": len(_FIRST_PERSON.findall(text)) * per100,
        "prompt_overlap": len(prompt_words & lowered) / len(prompt_words) if prompt_words else 0.0,
    }
    return [values[name] for name in STYLE_FEATURES]


def style_matrix(texts: Sequence[str], prompts: Sequence[str] | None = None) -> Matrix:
    prompts = prompts if prompts is not None else [""] * len(texts)
    rows = [style_vector(t, p) for t, p in zip(texts, prompts, strict=True)]
    return np.array(rows, dtype=np.float64).reshape(len(texts), len(STYLE_FEATURES))


def style_facts(text: str, prompt: str = "") -> dict[str, str]:
    """Human-readable counts behind each criterion, for justifications."""
    key = digest(prompt + "\x00" + text)
    facts = _FACTS.get(key)
    if facts is None:
        facts = _style_facts(text, prompt)
        _FACTS.put(key, facts)
    return dict(facts)


# Candidates recur (RLHF batches, A/B sets); keyed by digest, so texts do not stay in memory.
_FACTS: LRU[bytes, dict[str, str]] = LRU(8192, 16 << 20)


def _count(n: int, one: str, many: str) -> str:
    """`n` things, in the right number ("1 question", "3 questions")."""
    return f"{n} {one if n == 1 else many}"


def _style_facts(text: str, prompt: str) -> dict[str, str]:
    words = _WORD.findall(text)
    n = len(words)
    asked = {w.lower() for w in _WORD.findall(prompt)}
    shared = len(asked & {w.lower() for w in words})
    informal = len(_CONTRACTION.findall(text)) + len(_INFORMAL.findall(text))
    refusals, safety = len(_REFUSAL.findall(text)), len(_SAFETY.findall(text))
    return {
        "length": _count(n, "word", "words"),
        "structure": _count(len(_LIST_LINE.findall(text)), "list item", "list items")
        + ", "
        + _count(len(_HEADING.findall(text)), "heading", "headings"),
        "formality": _count(
            informal, "contraction or informal word", "contractions or informal words"
        ),
        "engagement": _count(text.count("?"), "question", "questions")
        + ", "
        + _count(len(_YOU.findall(text)), "use of 'you'", "uses of 'you'"),
        "hedging": _count(len(_HEDGE.findall(text)), "hedge", "hedges"),
        "caution": _count(refusals, "refusal or apology", "refusals or apologies")
        + ", "
        + _count(safety, "safety term", "safety terms"),
        "compliance": ("opens by agreeing" if _COMPLY_START.search(text) else "no agreeing opening")
        + ", "
        + _count(len(_INSTRUCTION.findall(text)), "instruction line", "instruction lines"),
        "harm": _count(len(_HARM.findall(text)), "term", "terms") + " about harm or violence",
        "examples": _count(
            len(_EXAMPLE.findall(text)), "example or code block", "examples or code blocks"
        ),
        "specificity": _count(len(_DIGIT.findall(text)), "digit", "digits"),
        "warmth": _count(len(_EMPATHY.findall(text)), "warm phrase", "warm phrases")
        + ", "
        + _count(text.count("!"), "exclamation", "exclamations"),
        "relevance": (
            f"takes up {shared} of the request's {_count(len(asked), 'word', 'words')}"
            if asked
            else "no request to compare with"
        ),
    }
