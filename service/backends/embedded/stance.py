"""An argument's stance without an LLM: which response it names, and praise or criticism.

References are the ways critiques name a response: "Response 1", "response_2", "Answer B",
"A1"/"A2" (ukp_convarg's workers), "argument 1", "the first (one)", "the former/latter",
"both"/"neither" (both responses). A reference after "than", "to", "over", "vs" or "unlike" is
the thing compared against, not the subject: "A1 gives more reasons than A2" is about A1.

Polarity is a sum over a small critique lexicon: +1 per praising cue ("clear", "evidence",
"explains", "to the point"), -1 per criticising one ("vague", "rude", "off topic", "too").
A negator ("not", "no", "n't", "lacks", "fails", "without", "less", "neither", "ignores",
"leaves out", "rather than") flips the first cue within the next four words ("lacks a clear
structure", "no errors", "not rude") and, flipping nothing, counts as criticism itself ("does
not state it", "ignores the warning"). "Too" and "overly" criticise whatever follows: "too
vague", "too short to be useful", "overly verbose".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.engine.critique import Target


def word_set(text: str) -> frozenset[str]:
    """A word list written as one string, one word per blank-separated token."""
    return frozenset(text.split())


_TOKEN = re.compile(r"[a-z0-9_]+(?:'[a-z]+)?")
# Phrases read as one token (spaces become underscores before tokenising).
_PHRASES = (
    "to the point",
    "on topic",
    "off topic",
    "off-topic",
    "well written",
    "well-written",
    "well thought",
    "thought out",
    "well informed",
    "well-informed",
    "backs up",
    "back up",
    "leaves out",
    "left out",
    "makes up",
    "made up",
    "long winded",
    "long-winded",
    "step by step",
    "step-by-step",
    "easy to follow",
    "easy to read",
    "hard to follow",
    "hard to read",
    "goes off",
    "gets off",
    "personal attack",
    "ad hominem",
    "nothing but",
    "no one",
    "rather than",
    "instead of",
    "factual error",
    "factual errors",
)
_PHRASE = re.compile("|".join(re.escape(p) for p in sorted(_PHRASES, key=len, reverse=True)))

POSITIVE = word_set(
    """
    better best good great excellent strong stronger clear clearer clearly concise convincing
    persuasive compelling valid logical coherent relevant accurate correct right precise exact
    detailed thorough specific informative helpful useful practical insightful thoughtful
    reasonable rational sensible sound solid well organized organised structured readable easy
    concrete factual evidence example examples reason reasons reasoning fact facts data
    statistics figures sources source research studies study proof support supports supported
    backs_up back_up explains explained explain explaining explanation addresses address answers
    answered cites cited citing demonstrates
    illustrates polite respectful friendly warm kind empathetic engaging direct focused
    to_the_point on_topic informed well_informed educated serious professional safe honest
    balanced nuanced complete comprehensive effective powerful interesting creative original
    elaborates justifies tailors tailored adapts convinces persuades references analogy
    well_written well_thought thought_out step_by_step easy_to_follow easy_to_read approachable
    succinct credible plausible realistic mature calm sincere
    """
)
NEGATIVE = word_set(
    """
    worse worst bad poor poorly weak weaker weakly vague unclear confusing confused rambling
    rambles irrelevant off_topic offtopic strays stray drifts wanders digresses tangent wrong
    incorrect inaccurate error errors mistake mistakes typos misspelled misspellings false
    misleading fake invents invented fabricated makes_up made_up rude insulting insults insult
    attacks attack personal_attack ad_hominem accusatory hostile offensive disrespectful
    condescending sarcastic biased emotional opinion opinions only just merely unsupported
    unfounded baseless random joke nonsense pointless ridiculous silly repetitive repeats
    redundant verbose long_winded wordy excessive incomplete shallow superficial
    generic contradictory contradicts illogical fallacy unsafe harmful dangerous hard difficult
    hard_to_follow hard_to_read noncommittal hedges hedging evasive preachy pessimistic angry
    aggressive immature childish unprofessional sloppy messy disorganized disorganised
    unreadable boring dull goes_off gets_off unconvincing unpersuasive uninformed ignorant
    nothing_but factual_error factual_errors
    """
)
# Negators: flip the next cue within `_SCOPE` words; alone they criticise.
NEGATORS = word_set(
    """
    not no never without lacks lack lacking fails fail failed failing missing less fewer
    rather_than instead_of
    neither nor barely hardly ignores ignore ignored omits omit absent nothing none cannot
    leaves_out left_out doesn't don't didn't isn't wasn't aren't won't can't couldn't
    shouldn't hasn't haven't
    """
)
# Excess: criticism whatever follows ("too long", "too vague", "too short to be useful").
EXCESS = frozenset({"too", "overly", "excessively"})
_SCOPE = 4

_REFS = re.compile(
    r"(?P<num>\b(?i:response|answer|argument|arg|assistant|candidate|option|output|completion)"
    r"[ _#-]?(?:(?P<digit>[12])|(?P<word>(?i:one|two))|(?P<letter>[AB]))\b)"
    r"|(?P<short>\b[Aa](?P<adigit>[12])\b|\bR(?P<rdigit>[12])\b)"
    r"|(?P<ordinal>\b(?i:the)\s+(?:(?P<ord>(?i:former|latter))\b|(?P<nth>(?i:first|second))"
    r"(?:\s+(?i:one|response|answer|argument|option|candidate|post)\b|(?=\s+(?i:is|was|has|"
    r"seems|does|doesn't|gives|makes|provides|uses|offers)\b|\s*[,.;])))\b)"
    r"|(?P<both>\b(?i:both|neither|each|either)\b(?:\s+(?i:of))?(?:\s+(?i:the))?"
    r"\s+(?i:responses?|answers?|arguments?|options?|candidates?|them|ones?|posts?)\b"
    r"|\b(?i:the\s+two)\s+(?i:responses|answers|arguments|options|candidates)\b"
    r"|^\s*(?i:both|neither)\b)"
)
_OBJECT_BEFORE = re.compile(
    r"(?i:\b(?:than|to|over|vs\.?|versus|unlike|against|from|with)\s+(?:the\s+)?)$"
)
_ORDINAL = {"first": "1", "former": "1", "second": "2", "latter": "2"}
_NUMBER = {"1": "1", "2": "2", "one": "1", "two": "2", "a": "1", "b": "2"}


@dataclass(frozen=True, slots=True)
class Reference:
    start: int
    end: int
    target: Target
    subject: bool  # False after "than", "to", "vs"...: the response compared against


def references(text: str) -> list[Reference]:
    """Every response named in `text`, in order."""
    out: list[Reference] = []
    for m in _REFS.finditer(text):
        if m.group("both"):
            target: Target = "both"
        elif m.group("ordinal"):
            target = "1" if _ORDINAL[(m.group("ord") or m.group("nth")).lower()] == "1" else "2"
        else:
            label = next(
                g
                for g in (m.group(n) for n in ("digit", "word", "letter", "adigit", "rdigit"))
                if g
            )
            target = "1" if _NUMBER[label.lower()] == "1" else "2"
        subject = _OBJECT_BEFORE.search(text[max(0, m.start() - 24) : m.start()]) is None
        out.append(Reference(m.start(), m.end(), target, subject))
    return out


def subject_target(refs: list[Reference]) -> Target | None:
    """What a clause is about: its first subject reference; with only compared-against ones,
    the other response ("clearer than A2" praises A1)."""
    for ref in refs:
        if ref.subject:
            return ref.target
    for ref in refs:
        if ref.target != "both":
            return "2" if ref.target == "1" else "1"
    return None


def tokens(text: str) -> list[str]:
    """Lower-case words, the lexicon's phrases joined with underscores."""
    lowered = _PHRASE.sub(lambda m: m.group(0).replace(" ", "_").replace("-", "_"), text.lower())
    return _TOKEN.findall(lowered.replace("\u2019", "'"))


def polarity_score(words: list[str]) -> int:
    """Praising minus criticising cues, with negation (see the module docstring)."""
    total = 0
    pending: int | None = None  # index of an open negator or excess word
    excess = False
    for i, word in enumerate(words):
        cue = 1 if word in POSITIVE else -1 if word in NEGATIVE else 0
        if pending is not None and i - pending > _SCOPE:
            total -= 1  # a negator that flipped nothing criticises
            pending = None
        if word in NEGATORS or word in EXCESS:
            if pending is not None:
                total -= 1
            pending, excess = i, word in EXCESS
            continue
        if cue and pending is not None:
            total -= 1 if excess else cue  # "too vague" stays criticism; "not vague" is praise
            pending = None
        else:
            total += cue
    if pending is not None:
        total -= 1
    return total
