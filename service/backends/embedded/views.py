"""Per-text feature views: standardised style, content embedding, wording n-grams.

Content is the embedding of the answer in its question ("Question: ...\\nAnswer: ...") next to
the answer's own embedding; both come from the shared embedder, whose cache makes a user's
recurring history cheap. Style and wording rows are cached here for the same reason.
"""

from __future__ import annotations

import json
import struct
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from service.backends.embedded.features import style_vector
from service.backends.embedded.lexical import CharNgrams
from service.backends.embedded.params import EmbeddedParams
from service.core.embedder import Embedder, span_key
from service.core.lru import LRU, digest
from service.core.priority import in_background

F64 = npt.NDArray[np.float64]
_MAGIC = b"PGTV1"


def qa_prefix(prompt: str) -> str:
    return f"Question: {prompt}\nAnswer: "


def qa_text(prompt: str, response: str) -> str:
    return qa_prefix(prompt) + response


# What the content view embeds per answer: "qa", the answer in its question; "answer", the
# answer alone (a second pass); "answer_in_qa", the answer's own tokens pooled from the "qa"
# pass (no second pass: half the embedding cost of "qa" + "answer").
CONTENT_VIEWS = ("qa", "answer", "answer_in_qa")


def content_keys(
    views: Sequence[str], prompts: Sequence[str], responses: Sequence[str]
) -> list[str]:
    """The embedder cache keys these views read (to look them up in a shared cache first)."""
    out: list[str] = []
    for view in _checked(views):
        if view == "qa":
            out += [qa_text(p, r) for p, r in zip(prompts, responses, strict=True)]
        elif view == "answer":
            out += list(responses)
        else:
            out += [span_key(qa_prefix(p), r) for p, r in zip(prompts, responses, strict=True)]
    return out


def content_vectors(
    embedder: Embedder, views: Sequence[str], prompts: Sequence[str], responses: Sequence[str]
) -> F64:
    """(n, len(views) * dim): each answer's vector per view, side by side, in `views` order."""
    parts: dict[str, npt.NDArray[np.float32]] = {}
    if "answer_in_qa" in _checked(views):
        prefixes = [qa_prefix(p) for p in prompts]
        parts["qa"], parts["answer_in_qa"] = embedder.encode_split(prefixes, responses)
    elif "qa" in views:
        parts["qa"] = embedder.encode(
            [qa_text(p, r) for p, r in zip(prompts, responses, strict=True)]
        )
    if "answer" in views:
        parts["answer"] = embedder.encode(list(responses))
    return np.hstack([parts[v] for v in views]).astype(np.float64)


def _checked(views: Sequence[str]) -> Sequence[str]:
    unknown = [v for v in views if v not in CONTENT_VIEWS]
    if unknown:
        raise ValueError(f"unknown content views {unknown} (known: {list(CONTENT_VIEWS)})")
    return views


@dataclass(frozen=True)
class TextViews:
    style: F64  # (n, S), standardised
    content: F64  # (n, C) or (n, 0)
    wording: sp.csr_matrix | None  # (n, N)
    # (n, J): the prediction experts' wording utilities, when the builder kept them per text
    # (the same numbers as `wording @ experts`, which a warm call need not multiply again).
    wording_scores: F64 | None = None

    def __len__(self) -> int:
        return int(self.style.shape[0])

    def to_bytes(self) -> bytes:
        """Exact serialisation (dtypes kept), for the persona cache: a JSON header of dtypes
        and shapes, then the raw arrays (an npz's zip costs more than the scoring it saves)."""
        arrays = [self.style, self.content]
        shape = None
        if self.wording is not None:
            w = self.wording.tocsr()
            arrays += [w.data, w.indices, w.indptr]
            shape = list(w.shape)
        header = json.dumps(
            {"arrays": [[a.dtype.str, list(a.shape)] for a in arrays], "wording_shape": shape}
        ).encode()
        body = b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)
        return _MAGIC + struct.pack("<I", len(header)) + header + body

    @classmethod
    def from_bytes(cls, data: bytes) -> TextViews:
        """Raises ValueError on anything that is not a whole `to_bytes` output."""
        try:
            return cls._decode(data)
        except (struct.error, KeyError, TypeError, IndexError) as error:
            raise ValueError(f"damaged TextViews record: {error}") from error

    @classmethod
    def _decode(cls, data: bytes) -> TextViews:
        if not data.startswith(_MAGIC):
            raise ValueError("not a TextViews record")
        start = len(_MAGIC) + 4
        (size,) = struct.unpack_from("<I", data, len(_MAGIC))
        header = json.loads(data[start : start + size])
        offset, arrays = start + size, []
        for dtype, shape in header["arrays"]:
            count = int(np.prod(shape))
            array = np.frombuffer(data, dtype=np.dtype(dtype), count=count, offset=offset)
            arrays.append(array.reshape(shape).copy())
            offset += array.nbytes
        if offset != len(data):
            raise ValueError("TextViews record has trailing or missing bytes")
        wording = None
        if header["wording_shape"] is not None:
            wording = sp.csr_matrix(tuple(arrays[2:5]), shape=tuple(header["wording_shape"]))
        return cls(style=arrays[0], content=arrays[1], wording=wording)

    def head(self, n: int) -> TextViews:
        return TextViews(
            style=self.style[:n],
            content=self.content[:n],
            wording=None if self.wording is None else sp.csr_matrix(self.wording[:n]),
            wording_scores=None if self.wording_scores is None else self.wording_scores[:n],
        )

    def tail(self, start: int) -> TextViews:
        """The texts from `start` on."""
        return TextViews(
            style=self.style[start:],
            content=self.content[start:],
            wording=None if self.wording is None else sp.csr_matrix(self.wording[start:]),
            wording_scores=None if self.wording_scores is None else self.wording_scores[start:],
        )


def _stack(rows: Sequence[sp.csr_matrix]) -> sp.csr_matrix:
    """One-row CSR matrices stacked (scipy's vstack costs more than the rest of a warm call's
    wording work)."""
    parts = [r if isinstance(r, sp.csr_matrix) else sp.csr_matrix(r) for r in rows]
    # 32-bit indices, as scipy keeps them at this size: given 64-bit ones it scans them to
    # narrow them, which cost a warm call more than the stacking.
    ends = np.cumsum([p.nnz for p in parts], dtype=np.int64)
    indptr = np.zeros(len(parts) + 1, np.int64 if ends.size and ends[-1] >= 2**31 else np.int32)
    indptr[1:] = ends
    data = np.concatenate([p.data for p in parts]) if parts else np.zeros(0)
    indices = np.concatenate([p.indices for p in parts]) if parts else np.zeros(0, np.int32)
    width = parts[0].shape[1] if parts else 0
    return sp.csr_matrix((data, indices, indptr), shape=(len(parts), width))


class ViewBuilder:
    def __init__(
        self,
        params: EmbeddedParams,
        embedder: Embedder,
        cache_size: int = 20_000,
        cache_bytes: int = 32 << 20,  # per cache; keyed by digests, not texts
        wording_experts: npt.NDArray[np.float32] | None = None,
    ) -> None:
        """`wording_experts` (N, J): the prediction experts' wording weights; given, each
        text's wording utilities are kept with its wording row (`TextViews.wording_scores`)."""
        self.params = params
        self.embedder = embedder
        self._ngrams = (
            CharNgrams(params.idf_index, params.idf_value) if params.idf_index.size else None
        )
        self._mean = params.style_mean.astype(np.float64)
        self._std = params.style_std.astype(np.float64)
        self._experts = wording_experts
        self._style: LRU[bytes, F64] = LRU(cache_size, cache_bytes)
        self._wording: LRU[bytes, tuple[sp.csr_matrix, F64 | None]] = LRU(cache_size, cache_bytes)
        # Calls into the embedder, which batches concurrent ones itself (service.core._batcher);
        # made on first use, and again after close().
        self._embedding: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._embedding is not None:
                self._embedding.shutdown(wait=False, cancel_futures=True)
                self._embedding = None

    def _executor(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._embedding is None:
                self._embedding = ThreadPoolExecutor(8, thread_name_prefix="embedding")
            return self._embedding

    def build(self, prompts: Sequence[str], responses: Sequence[str]) -> TextViews:
        """The three views. The embedder (native code, GIL released) runs on a thread of its
        own while the style and wording rows are computed here, so a cold call pays for the
        longer of the two rather than their sum; an expensive call's embedding stays on its
        own lowered-priority thread (service.core.priority), where latency matters less. Texts
        whose vectors are all in memory (a warm call) need no thread."""
        content: Future[F64] | F64 = np.zeros((len(responses), 0))
        if self.params.has_content:
            views = self.params.content_views
            call = partial(content_vectors, self.embedder, views, prompts, responses)
            keys = set(content_keys(views, prompts, responses))
            inline = in_background() or len(self.embedder.cached(list(keys))) == len(keys)
            content = call() if inline else self._executor().submit(call)
        style = np.stack([self._style_row(p, r) for p, r in zip(prompts, responses, strict=True)])
        wording, scores = (
            self._wording_rows(responses) if self._ngrams is not None else (None, None)
        )
        vectors = content.result() if isinstance(content, Future) else content
        return TextViews(style=style, content=vectors, wording=wording, wording_scores=scores)

    def _style_row(self, prompt: str, response: str) -> F64:
        key = digest(prompt, response)
        row = self._style.get(key)
        if row is None:
            row = (np.asarray(style_vector(response, prompt)) - self._mean) / self._std
            self._style.put(key, row)
        return row

    def _wording_rows(self, responses: Sequence[str]) -> tuple[sp.csr_matrix, F64 | None]:
        """The texts' wording rows and, with `wording_experts`, their (n, J) utilities. A CSR
        product sums each row on its own, so a text's utilities are the same numbers whichever
        texts they were first computed with."""
        assert self._ngrams is not None
        known = {r: self._wording.get(digest(r)) for r in dict.fromkeys(responses)}
        missing = [r for r, entry in known.items() if entry is None]
        if missing:
            fresh = self._ngrams.transform(missing)
            products = None if self._experts is None else fresh @ self._experts
            for i, response in enumerate(missing):
                own = None if products is None else np.asarray(products[i], np.float64)
                known[response] = (fresh[i], own)
                self._wording.put(digest(response), (fresh[i], own))
        entries = [known[r] for r in responses]
        wording = _stack([e[0] for e in entries if e is not None])
        scores = [e[1] for e in entries if e is not None and e[1] is not None]
        return wording, np.stack(scores) if self._experts is not None else None
