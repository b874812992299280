"""The embedded backend's traces read right to a product person: stable keys, justifications
that agree with their scores, and the issue's own examples (a user who likes short answers
and an 11- against an 83-word answer)."""

from __future__ import annotations

import pytest

from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.core.chain import EvaluationChain
from service.core.criteria import KEYS
from service.core.embedder import Embedder
from service.engine.backend import SampleGroup
from service.engine.explain import explain
from service.engine.parsing import parse_chain
from tests.helpers import LONG, SHORT, prefers, task

ELEVEN = "Steep green tea two minutes in water just off the boil."
EIGHTY_THREE = (  # 83 words
    "Green tea is delicate, so the water should be well below boiling, around 75 to 80 degrees "
    "Celsius, which you can get by letting a kettle rest for a few minutes after it boils. Use "
    "about one teaspoon of leaves per cup and steep for two to three minutes; longer draws out "
    "bitter tannins. Taste at two minutes. Good leaves can be steeped "
    "again, adding thirty seconds or so for each later infusion, and each round brings out "
    "different notes of the tea."
)
CANDIDATES = [(LONG, SHORT), (ELEVEN, EIGHTY_THREE), (SHORT, ELEVEN, EIGHTY_THREE)]


@pytest.fixture
async def backend(embedder: Embedder) -> EmbeddedBackend:
    b = EmbeddedBackend(lambda: embedder, load_params())
    await b.start()
    return b


def chains(
    backend: EmbeddedBackend, kind: str, candidates: tuple[str, ...]
) -> list[EvaluationChain]:
    history = prefers(kind) if kind else ()
    group = SampleGroup("ind", "u", history, task(*candidates), 8, seed=11)
    out = []
    for completion in backend.generate_sync(group):
        chain = parse_chain(completion.text, len(candidates))
        assert isinstance(chain, EvaluationChain), chain
        out.append(chain)
    return out


def test_keys_are_stable_across_users_whatever_the_names(backend: EmbeddedBackend) -> None:
    short = chains(backend, "short", (LONG, SHORT))[0]
    long_ = chains(backend, "long", (LONG, SHORT))[0]
    by_key = {c.key: c.name for c in short.criteria}, {c.key: c.name for c in long_.criteria}
    assert by_key[0]["length"] == "Conciseness" and by_key[1]["length"] == "Thoroughness"
    for chain in (short, long_):
        assert {c.key for c in chain.criteria} <= set(KEYS) - {"other"}
        for candidate in chain.candidates:
            assert [s.key for s in candidate.scores] == [c.key for c in chain.criteria]


@pytest.mark.parametrize("kind", ["short", "long", ""])
@pytest.mark.parametrize("candidates", CANDIDATES)
def test_a_justification_never_contradicts_its_score(
    backend: EmbeddedBackend, kind: str, candidates: tuple[str, ...]
) -> None:
    """Wherever a criterion separates two candidates by half a point, the higher-scored one's
    justification names the side this user prefers and the lower one's the other side."""
    checked = 0
    for chain in chains(backend, kind, candidates):
        for j, criterion in enumerate(chain.criteria):
            scores = [c.scores[j] for c in chain.candidates]
            for a in scores:
                for b in scores:
                    if a.score - b.score < 0.5 or a is b:
                        continue
                    checked += 1
                    assert "as this user prefers" in a.justification, (criterion.name, a, b)
                    assert (
                        "which this user likes less" in b.justification
                        or ", but " in b.justification
                    ), (criterion.name, a, b)
    assert checked > 0


def test_the_shorter_answer_wins_conciseness_in_words_that_say_so(
    backend: EmbeddedBackend,
) -> None:
    chain = chains(backend, "short", (ELEVEN, EIGHTY_THREE))[0]
    j = next(i for i, c in enumerate(chain.criteria) if c.key == "length")
    assert chain.criteria[j].name == "Conciseness"
    short, long_ = (c.scores[j] for c in chain.candidates)
    assert short.score > long_.score + 0.5
    assert short.justification.startswith("11 words: shorter than the other candidate")
    assert long_.justification.startswith("83 words: longer than the other candidate")
    assert "which this user likes less" in long_.justification


def test_no_justification_is_empty_of_facts(backend: EmbeddedBackend) -> None:
    """The old "Its content; about average for this user." said nothing."""
    for chain in chains(backend, "short", (LONG, SHORT)):
        for candidate in chain.candidates:
            for s in candidate.scores:
                assert "about average" not in s.justification
                assert ":" in s.justification, s
                assert "shares the request" not in s.justification.lower()


def test_the_why_names_a_separating_criterion(backend: EmbeddedBackend) -> None:
    chain = chains(backend, "short", (LONG, SHORT))[0]
    explained = explain(chain)
    separating = {c.name for c, s in zip(chain.criteria, explained.separates, strict=True) if s}
    assert separating
    winner = max(range(2), key=lambda i: chain.candidates[i].overall)
    assert explained.why[winner].startswith("Ranked 1 of 2, mainly on ")
    assert any(name in explained.why[winner] for name in separating)
    assert explained.why[1 - winner].startswith("Ranked 2 of 2, held back mainly by ")
