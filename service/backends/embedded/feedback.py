"""What users' own reasons say they value: their feedback, as emphasis on the rubric's criteria.

A history pair may carry the user's `feedback` ("A1 gives examples, A2 is just insults"). Words
that name a criterion raise that criterion's part of the user's utility: `emphasis` gives, per
style group, the share of the user's reasons that name it, and `usermodel.infer` multiplies the
group's coefficients by 1 + `Calibration.feedback_gain` x that share. The gain is chosen on val
rows like the rest of the calibration (0 where reasons do not help), so feedback sharpens what
the model already weighs; it never turns a criterion's direction around.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from service.backends.embedded.features import STYLE_GROUPS

F64 = npt.NDArray[np.float64]

# Criterion -> word stems that name it in a reason (matched at word starts, case-insensitive).
LEXICON: dict[str, tuple[str, ...]] = {
    "length": (
        "detail",
        "thorough",
        "elaborat",
        "in depth",
        "more info",
        "longer",
        "short",
        "brief",
        "concise",
        "lengthy",
    ),
    "structure": ("organi", "structur", "clear", "coherent", "list", "format"),
    "formality": (
        "grammar",
        "spelling",
        "typo",
        "professional",
        "formal",
        "slang",
        "writing",
        "written",
        "vulgar",
        "curs",
        "swear",
        "profan",
    ),
    "engagement": ("question", "asks", "engag"),
    "hedging": ("unsure", "uncertain", "assum", "hedg", "confident", "sure of"),
    "caution": ("safe", "danger", "refus", "moral", "ethic"),
    "compliance": ("answer", "follows", "instruction", "direct"),
    "harm": ("harm", "insult", "rude", "attack", "offensive", "hateful", "idiot", "stupid"),
    "examples": ("example", "for instance", "such as", "experience", "story", "anecdot"),
    "specificity": (
        "fact",
        "evidence",
        "statistic",
        "data",
        "source",
        "specific",
        "number",
        "proof",
        "prove",
        "research",
        "studies",
        "study",
        "cite",
        "citation",
    ),
    "warmth": ("emotion", "passion", "feel", "personal", "heart", "empath", "compassion"),
    "relevance": (
        "topic",
        "relevant",
        "irrelevant",
        "on point",
        "stance",
        "the point",
        "off-topic",
        "side",
    ),
}
_PATTERNS = {
    group: re.compile(r"\b(?:" + "|".join(re.escape(stem) for stem in stems) + ")", re.IGNORECASE)
    for group, stems in LEXICON.items()
}
GROUPS: tuple[str, ...] = tuple(STYLE_GROUPS)


def emphasis(reasons: Sequence[str | None]) -> F64:
    """(groups,) the share of the given reasons that name each style group; zeros if none."""
    texts = [r for r in reasons if r and r.strip()]
    out = np.zeros(len(GROUPS))
    for text in texts:
        for j, group in enumerate(GROUPS):
            if _PATTERNS[group].search(text):
                out[j] += 1.0
    return out / len(texts) if texts else out


def ranked(shares: F64) -> tuple[str, ...]:
    """The style groups with a share, most often named first (ties in the rubric's order)."""
    if not shares.any():  # no reasons, the common case: every Ind-N sample asks
        return ()
    return tuple(GROUPS[int(j)] for j in np.argsort(-shares, kind="stable") if shares[j] > 0)


def named(reasons: Sequence[str | None], top: int = 3) -> list[str]:
    """The criteria the reasons name most often (for the persona text)."""
    return list(ranked(emphasis(reasons))[:top])
