"""Key arguments of a free-text critique without an LLM: claims, each with target and polarity.

A critique is cut into claims: sentences (and lines, bullets, ";"), then clauses at contrast
words ("but", "while", "whereas", "although", "though", "yet", "on the other hand", "in
contrast") and before a newly named response (", A2 rambles", "and Response 2..."). A leading
"While poorly written, A2 makes a good point" becomes "poorly written" and "A2 makes a good
point", both about A2.

Each claim's target (`service.backends.embedded.stance`), in order of trust: a response it
names as its subject; the target of the clause before it in the sentence (or after it, for a
leading subordinate clause), or of the previous claim when it opens with a pronoun ("It also
cites..."); the response it shares content words with while the other does not; and last the
critique's own choice: praise of an unnamed "it" is praise of the chosen response, criticism
is of the other. Polarity is the lexicon's sum; a claim with no cue takes the stance its
target implies (about the chosen response: praise).

A claim that only states the verdict ("I think A1 is more convincing") is no argument: the
process reward is about reasons, and a bare verdict would let the outcome count twice.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from service.backends.embedded.stance import (
    Reference,
    polarity_score,
    references,
    subject_target,
    tokens,
    word_set,
)
from service.engine.critique import Argument, Polarity, Target, TargetSource

_SENTENCES = re.compile(r"(?<=[.!?])[\"')\]]*\s+|\s*[\n;]+\s*")
_ABBREVIATIONS = re.compile(r"\b(e\.g|i\.e|vs|etc|cf|approx|mr|mrs|dr|no)\.", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*\u2022>]+|\d+[.)]|#+)\s*")
_CONTRAST = re.compile(
    r"\s*(?:,\s*)?(?<!nothing )(?<!anything )(?<!all )"  # "nothing but insults" is one claim
    r"\b(?:but|while|whilst|whereas|although|though|yet|on the other hand|in contrast|"
    r"by contrast)\b[,\s]*",
    re.IGNORECASE,
)
_LEADING = re.compile(
    r"^(?:while|whilst|although|though|even though|whereas)\b\s*(?P<sub>[^,]+),\s*(?P<main>.+)$",
    re.IGNORECASE | re.DOTALL,
)
_BEFORE_REF = re.compile(r"\s*(?:,\s*(?:and\s+)?|\s+and\s+)$")
_OPENERS = re.compile(
    r"^(?:(?:however|also|overall|in addition|additionally|moreover|furthermore|finally|"
    r"first(?:ly)?|second(?:ly)?|lastly|in short|in conclusion|meanwhile|then|so|and|plus|"
    r"similarly|instead)\b[,:]?\s*)+",
    re.IGNORECASE,
)
_PRONOUN_START = re.compile(
    r"^(?:it|its|it's|this|that|they|their|them|he|she|his|her|the author|the writer|"
    r"the poster|the (?:response|answer|argument))\b",
    re.IGNORECASE,
)
_STOP = word_set(
    """
    the a an and or of to in on for with as at by from that this these those it its it's is are
    was were be been being has have had do does did doing i you he she they we my your their his
    her our them me us what which who whom whose when where why how all any some such than then
    there here also very really quite so too more most much many few less least just only about
    into over under again further once both each other own same not no nor can will would should
    could may might must shall also one two
    """
)
# Words that state a verdict and no reason: a claim made only of these is no argument.
_VERDICT = word_set(
    """
    better best worse worst prefer prefers preferred preferable superior inferior winner wins
    win choose chose chosen pick picked select selected convincing persuasive compelling
    unconvincing good bad great overall stronger weaker strong weak clearly definitely
    argument arguments response responses answer answers think believe feel find agree seems
    seem opinion personally overall option winner sounds sound makes make point case
    """
)
_MIN_WORD = 3


def segment(text: str) -> list[list[str]]:
    """Claims grouped by sentence, in order (see the module docstring)."""
    sentences: list[list[str]] = []
    plain = _ABBREVIATIONS.sub(lambda m: m.group(1).replace(".", ""), text)
    for raw in _SENTENCES.split(plain):
        sentence = _BULLET.sub("", raw).strip()
        if not sentence:
            continue
        lead = _LEADING.match(sentence)
        parts = [lead.group("sub"), lead.group("main")] if lead else [sentence]
        clauses = [c for p in parts for c in _CONTRAST.split(p)]
        claims = [c for clause in clauses for c in _split_before_refs(clause)]
        claims = [_tidy(c) for c in claims]
        if any(claims):
            sentences.append([c for c in claims if c])
    return sentences


def _split_before_refs(clause: str) -> list[str]:
    """Cut at ", " or " and " when a new subject response is named right after."""
    cuts = [0]
    for ref in references(clause):
        if not ref.subject or ref.start == 0:
            continue
        window = max(0, ref.start - 12)
        joint = _BEFORE_REF.search(clause[window : ref.start])
        if joint is not None:
            cuts += [window + joint.start(), ref.start]
    bounds = [*cuts, len(clause)]
    pieces = [clause[bounds[i] : bounds[i + 1]] for i in range(0, len(bounds) - 1, 2)]
    return [p for p in pieces if p.strip()]


def _tidy(claim: str) -> str:
    claim = _OPENERS.sub("", claim.strip(" \t,.;:!?-\u2013\u2014\"'"))
    return claim.strip(" \t,.;:!?-\u2013\u2014\"'")


def content_words(text: str) -> set[str]:
    """Words that carry content: no stop words, no response names; plurals folded."""
    return {_fold(w) for w in tokens(text) if len(w) >= _MIN_WORD and w not in _STOP}


def _fold(word: str) -> str:
    return word[:-1] if len(word) > 4 and word.endswith("s") and not word.endswith("ss") else word


def is_verdict_only(claim: str) -> bool:
    """Nothing but a verdict ("A1 is more convincing"): no reason given."""
    words = content_words(_without_refs(claim, references(claim)))
    return not (words - {_fold(w) for w in _VERDICT})


def _without_refs(text: str, refs: Sequence[Reference]) -> str:
    for ref in reversed(refs):
        text = text[: ref.start] + " " + text[ref.end :]
    return text


def _stance_words(text: str, refs: Sequence[Reference]) -> str:
    """The claim without its response names ("Both answers" is no praise), keeping the
    "neither" of "neither response" (a negation)."""
    for ref in reversed(refs):
        kept = "neither" if text[ref.start : ref.end].lower().startswith("neither") else " "
        text = text[: ref.start] + f" {kept} " + text[ref.end :]
    return text


def core(text: str) -> str:
    """The claim with the responses it names replaced by "it": what it says, whoever it is
    about. Meaning similarity is measured on this; stance is checked apart."""
    refs = references(text)
    for ref in reversed(refs):
        text = text[: ref.start] + ("both" if ref.target == "both" else "it") + text[ref.end :]
    return re.sub(r"\s+", " ", text).strip()


def extract(
    text: str,
    responses: tuple[str, str] = ("", ""),
    choice: int | None = None,
    limit: int = 32,
) -> tuple[Argument, ...]:
    """The key arguments of a critique (at most `limit`, in order)."""
    own = [content_words(r) for r in responses]
    out: list[Argument] = []
    previous: Target | None = None
    for sentence in segment(text):
        named = [subject_target(references(c)) for c in sentence]
        for i, claim in enumerate(sentence):
            target, source = _resolve(claim, named, i, previous, own)
            argument = None if is_verdict_only(claim) else read_claim(claim, target, source, choice)
            previous = argument.target if argument is not None else target
            if argument is not None:
                out.append(argument)
            if len(out) >= limit:
                return tuple(out)
    return tuple(out)


def _resolve(
    claim: str,
    named: list[Target | None],
    i: int,
    previous: Target | None,
    own: list[set[str]],
) -> tuple[Target | None, TargetSource | None]:
    if named[i] is not None:
        return named[i], "explicit"
    before = [t for t in named[:i] if t is not None]
    after = [t for t in named[i + 1 :] if t is not None]
    if before:
        return before[-1], "inherited"
    if i == 0 and after and len(named) > 1:
        return after[0], "inherited"
    if previous is not None and _PRONOUN_START.match(claim):
        return previous, "inherited"
    overlap = _overlap_target(claim, own)
    if overlap is not None:
        return overlap, "overlap"
    return None, None  # left to the choice, once polarity is known


def _overlap_target(claim: str, own: list[set[str]]) -> Target | None:
    """The response whose own words (not the other's) the claim uses: "mentions fruit flies"."""
    words = content_words(claim)
    first, second = len(words & (own[0] - own[1])), len(words & (own[1] - own[0]))
    if first > second and (first >= 2 or second == 0):
        return "1"
    if second > first and (second >= 2 or first == 0):
        return "2"
    return None


def read_claim(
    claim: str,
    target: Target | None = None,
    source: TargetSource | None = None,
    choice: int | None = None,
) -> Argument | None:
    """One claim as an argument: its own subject reference first, then the given target,
    polarity from the lexicon, then the choice (see the module docstring). None without a
    target or without a polarity: a claim with no stance is no argument to match."""
    refs = references(claim)
    own = subject_target(refs)
    if own is not None:
        target, source = own, "explicit"
    score = polarity_score(tokens(_stance_words(claim, refs)))
    polarity: Polarity | None = "positive" if score > 0 else "negative" if score < 0 else None
    chosen: Target | None = None if choice not in (1, 2) else ("1" if choice == 1 else "2")
    if target is None and chosen is not None:
        other: Target = "2" if chosen == "1" else "1"
        target, source = (other if polarity == "negative" else chosen), "choice"
    if target is None:
        return None
    if polarity is None:
        if target == "both" or chosen is None:
            return None
        polarity = "positive" if target == chosen else "negative"
    return Argument(claim[:1].upper() + claim[1:], target, polarity, source)
