"""Interpretable style features of a response: the measurable half of the embedded rubric.

Each feature is one number per response and backs one criterion whose name flips with the
user's direction (a user who prefers low `length` gets "Conciseness", high gets "Thoroughness").
Pure functions of the text; cheap enough to run on every candidate of every request.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

STYLE_FEATURES = ("length", "structure", "formality", "engagement", "caution", "examples")

_WORD = re.compile(r"[A-Za-z']+|\d+")
_LIST_LINE = re.compile(r"^\s*(?:[-*\u2022+]|\d+[.)])\s+\S", re.MULTILINE)
_HEADING = re.compile(
    r"^\s*(?:#{1,6}\s+\S|\*\*[^*\n]{2,80}\*\*\s*:?\s*$|[A-Z][^\n]{0,60}:\s*$)", re.MULTILINE
)
_CONTRACTION = re.compile(r"\b\w+'(?:s|re|ve|ll|d|m|t)\b", re.IGNORECASE)
_INFORMAL = re.compile(
    r"\b(?:hey|yeah|yep|nope|gonna|wanna|kinda|sorta|lol|awesome|cool|stuff|okay|ok|folks|guys)\b",
    re.IGNORECASE,
)
_SECOND_PERSON = re.compile(r"\byou(?:r|rs|rself)?\b", re.IGNORECASE)
_CAUTION = re.compile(
    r"\b(?:i'?m sorry|sorry|i (?:can(?:no|')t|am unable|won'?t)|not able to|as an ai|"
    r"i (?:don'?t|do not) (?:know|think)|might|may|perhaps|possibly|it depends|"
    r"consult|professional|please note|disclaimer|be careful|caution|safety|illegal|"
    r"harmful|dangerous|unethical|not appropriate|inappropriate|recommend (?:seeking|talking))\b",
    re.IGNORECASE,
)
_EXAMPLE = re.compile(
    r"```|\b(?:for example|for instance|e\.g\.|such as|example|imagine|consider)\b", re.IGNORECASE
)

Matrix = npt.NDArray[np.float64]


def style_vector(text: str) -> list[float]:
    """Raw (unstandardised) feature values, in `STYLE_FEATURES` order."""
    words = _WORD.findall(text)
    n_words = len(words)
    per100 = 100.0 / max(n_words, 20)
    sentences = max(1, len(re.findall(r"[.!?](?:\s|$)", text)))
    avg_word = sum(map(len, words)) / n_words if n_words else 0.0
    formality = (
        0.5 * avg_word
        - 1.5 * len(_CONTRACTION.findall(text)) * per100
        - 2.0 * len(_INFORMAL.findall(text)) * per100
        - 1.0 * text.count("!") * per100
    )
    engagement = text.count("?") / sentences + 0.5 * len(_SECOND_PERSON.findall(text)) * per100
    return [
        math.log1p(n_words),
        math.log1p(len(_LIST_LINE.findall(text)) + 2 * len(_HEADING.findall(text))),
        formality,
        engagement,
        math.log1p(len(_CAUTION.findall(text)) * per100),
        math.log1p(len(_EXAMPLE.findall(text))),
    ]


def style_matrix(texts: Sequence[str]) -> Matrix:
    return np.array([style_vector(t) for t in texts], dtype=np.float64).reshape(
        len(texts), len(STYLE_FEATURES)
    )


def style_facts(text: str) -> dict[str, str]:
    """Human-readable counts behind each feature, for criterion justifications."""
    n_words = len(_WORD.findall(text))
    lists, heads = len(_LIST_LINE.findall(text)), len(_HEADING.findall(text))
    informal = len(_CONTRACTION.findall(text)) + len(_INFORMAL.findall(text))
    return {
        "length": f"{n_words} words",
        "structure": f"{lists} list items and {heads} headings",
        "formality": f"{informal} contractions or informal words",
        "engagement": f"{text.count('?')} questions, {len(_SECOND_PERSON.findall(text))} 'you'",
        "caution": f"{len(_CAUTION.findall(text))} hedges, apologies or disclaimers",
        "examples": f"{len(_EXAMPLE.findall(text))} examples or code blocks",
    }
