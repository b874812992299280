"""Wording features: hashed character n-gram TF-IDF (sublinear tf, learnt idf, L2-normalised).

Character n-grams within word boundaries catch a register's vocabulary and morphology (jargon,
flourishes, slang) that a 384-d sentence embedding smooths away. Hashing keeps the vocabulary
out of the parameter file; only the idf of buckets seen in training is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

N_FEATURES = 2**18
NGRAMS = (2, 5)


class CharNgrams:
    def __init__(
        self, idf_index: npt.NDArray[np.int64], idf_value: npt.NDArray[np.float32]
    ) -> None:
        from sklearn.feature_extraction.text import HashingVectorizer

        self._hasher: Any = HashingVectorizer(
            analyzer="char_wb",
            ngram_range=NGRAMS,
            n_features=N_FEATURES,
            alternate_sign=False,
            norm=None,
            dtype=np.float32,
        )
        idf = np.full(N_FEATURES, float(idf_value.max()) if idf_value.size else 1.0, np.float32)
        idf[idf_index] = idf_value
        self._idf = sp.diags(idf, format="csr")

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        counts = self._hasher.transform(list(texts))
        counts.data = 1.0 + np.log(counts.data)  # sublinear tf
        weighted = (counts @ self._idf).tocsr()
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return sp.csr_matrix(sp.diags(1.0 / norms) @ weighted)


def fit_idf(texts: Sequence[str]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """Smooth idf over the buckets that occur in `texts` (training texts only)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    hasher = HashingVectorizer(
        analyzer="char_wb",
        ngram_range=NGRAMS,
        n_features=N_FEATURES,
        alternate_sign=False,
        norm=None,
    )
    counts = hasher.transform(list(texts))
    df = np.bincount(counts.indices, minlength=N_FEATURES)
    index = np.flatnonzero(df).astype(np.int64)
    n = counts.shape[0]
    value = (np.log((1 + n) / (1 + df[index])) + 1.0).astype(np.float32)
    return index, value
