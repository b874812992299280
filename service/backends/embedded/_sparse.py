"""Sparse-matrix helpers for the user model: dense rows over only the columns a history uses,
without scipy's column indexing or transposes of 2^18-column matrices on every request."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

F64 = npt.NDArray[np.float64]


def on_columns(matrix: sp.csr_matrix, columns: npt.NDArray[np.int64]) -> F64:
    """The sparse rows as a dense matrix over the given sorted columns (others dropped):
    `matrix[:, columns]` without scipy's column indexing, which builds maps the size of all
    2^18 columns on every call."""
    m = _csr(matrix)
    out = np.zeros((m.shape[0], columns.size))
    if not columns.size or not m.nnz:
        return out
    where = np.minimum(np.searchsorted(columns, m.indices), columns.size - 1)
    kept = columns[where] == m.indices
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))[kept]
    flat = np.bincount(rows * columns.size + where[kept], weights=m.data[kept], minlength=out.size)
    return np.asarray(flat, np.float64).reshape(out.shape)


def compact(matrix: sp.csr_matrix) -> F64:
    """The sparse rows as a dense matrix over only the columns they use: same dot products,
    without transposing a 2^18-column matrix on every request."""
    m = _csr(matrix)
    cols, where = np.unique(m.indices, return_inverse=True)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    # bincount sums duplicate entries like np.add.at, at a fraction of its cost.
    flat = np.bincount(rows * cols.size + where, weights=m.data, minlength=m.shape[0] * cols.size)
    return np.asarray(flat, np.float64).reshape(m.shape[0], cols.size)


def dense(x: Any) -> F64:
    return np.asarray(x.toarray() if sp.issparse(x) else x, dtype=np.float64)


def _csr(matrix: Any) -> sp.csr_matrix:
    """As CSR, without re-wrapping one that already is (scipy checks its format again)."""
    return matrix if isinstance(matrix, sp.csr_matrix) else sp.csr_matrix(matrix)
