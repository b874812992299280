"""Wording features: hashed character n-gram TF-IDF (sublinear tf, learnt idf, L2-normalised).

Character n-grams within word boundaries catch a register's vocabulary and morphology (jargon,
flourishes, slang) that a 384-d sentence embedding smooths away. Hashing keeps the vocabulary
out of the parameter file; only the idf of buckets seen in training is stored.

The counts are sklearn's `HashingVectorizer(analyzer="char_wb")` exactly (a test compares
them), computed per distinct word: char_wb n-grams never cross a word boundary, so a text's
counts are the sum of its words', and a word's buckets are hashed once and kept. Hashing every
n-gram of every text in Python was most of a cold score's own CPU (~29 ms of a request's).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from sklearn.utils import murmurhash3_32

N_FEATURES = 2**18
NGRAMS = (2, 5)
_CACHED_WORD_CHARS = 64  # longer "words" (URLs, code) are hashed each time, not kept


class CharNgrams:
    def __init__(
        self, idf_index: npt.NDArray[np.int64], idf_value: npt.NDArray[np.float32]
    ) -> None:
        idf = np.full(N_FEATURES, float(idf_value.max()) if idf_value.size else 1.0, np.float32)
        idf[idf_index] = idf_value
        self._idf = sp.diags(idf, format="csr")
        # A word's buckets are at most 4 x (its length + 2) int32s: with words of at most
        # _CACHED_WORD_CHARS kept, 32k entries hold at most ~40 MB (typical words: ~5 MB).
        cached = functools.lru_cache(maxsize=32_768)(self._hash_word)
        self._buckets: Callable[[str], npt.NDArray[np.int32]] = lambda word: (
            cached(word) if len(word) <= _CACHED_WORD_CHARS else self._hash_word(word)
        )

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        counts = self.counts(texts)
        counts.data = 1.0 + np.log(counts.data)  # sublinear tf
        weighted = (counts @ self._idf).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ weighted)

    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """(n, N_FEATURES) float32 n-gram counts, sorted indices: the hasher's, per word."""
        columns, weights, sizes = [], [], []
        for text in texts:
            words = Counter(text.lower().split())
            buckets = [self._buckets(w) for w in words]
            columns += buckets
            lengths = [b.size for b in buckets]
            weights.append(np.repeat(np.fromiter(words.values(), np.float32, len(words)), lengths))
            sizes.append(sum(lengths))
        flat = np.concatenate(columns) if columns else np.zeros(0, np.int32)
        rows = np.repeat(np.arange(len(texts)), sizes)
        coo = sp.coo_matrix((np.concatenate(weights), (rows, flat)), (len(texts), N_FEATURES))
        out = coo.tocsr()  # sums the repeats
        out.sort_indices()
        return out

    def _hash_word(self, word: str) -> npt.NDArray[np.int32]:
        """The hash buckets of one (lower-cased) word's n-grams, with repeats."""
        grams = _word_ngrams(word)
        return np.fromiter(
            (abs(murmurhash3_32(g, 0)) % N_FEATURES for g in grams), np.int32, len(grams)
        )


def _word_ngrams(word: str) -> list[str]:
    """sklearn's char_wb n-grams of one word: padded with a space each side; a word shorter
    than an n is counted once, whole, and no longer n-grams are taken."""
    padded = f" {word} "
    out = []
    for n in range(NGRAMS[0], NGRAMS[1] + 1):
        out += [padded[i : i + n] for i in range(max(1, len(padded) - n + 1))]
        if len(padded) <= n:
            break
    return out


def hashing_vectorizer() -> Any:
    """sklearn's vectorizer whose counts `CharNgrams.counts` computes (the reference)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(
        analyzer="char_wb",
        ngram_range=NGRAMS,
        n_features=N_FEATURES,
        alternate_sign=False,
        norm=None,
        dtype=np.float32,
    )


def fit_idf(texts: Sequence[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Smooth idf over the buckets that occur in `texts` (training texts only)."""
    counts = hashing_vectorizer().transform(list(texts))
    df = np.bincount(counts.indices, minlength=N_FEATURES)
    index = np.flatnonzero(df).astype(np.int64)
    n = counts.shape[0]
    value = (np.log((1 + n) / (1 + df[index])) + 1.0).astype(np.float32)
    return index, value
