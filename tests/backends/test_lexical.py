"""The wording view's n-gram counts are sklearn's HashingVectorizer's, computed per word."""

from __future__ import annotations

import numpy as np

from service.backends.embedded.lexical import CharNgrams, hashing_vectorizer
from service.core.rows import load_rows
from tests.conftest import SHARED_DATA
from tests.helpers import LONG, SHORT

EDGES = [
    "",
    "   ",
    "a",
    "I",
    "ab ab ab",
    "Tabs\tand\nnew lines,  double  spaces; punctuation!?",
    "É Ünïcödé straße İstanbul ǅ",
    "x" * 300 + " y",  # a "word" too long to keep
    "emoji 🙂🙂 and\u00a0no-break space",
]


def test_counts_equal_the_hashing_vectorizers() -> None:
    texts = [*EDGES, LONG, SHORT]
    for name in ("dsp", "ukp_convarg"):  # real answers where the shared data is here
        path = SHARED_DATA / name / "pairs.jsonl.gz"
        if path.exists():
            rows, _ = load_rows(path)
            texts += [t for r in rows[:100] for t in (r.chosen, r.rejected)]
    ngrams = CharNgrams(np.zeros(0, np.int64), np.zeros(0, np.float32))
    for _ in range(2):  # the second pass reads every word's buckets from the cache
        got, want = ngrams.counts(texts), hashing_vectorizer().transform(texts)
        assert got.dtype == want.dtype == np.float32
        assert got.has_sorted_indices
        np.testing.assert_array_equal(got.indptr, want.indptr)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.data, want.data)
