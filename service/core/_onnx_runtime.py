"""The embedder's transformer on ONNX Runtime (`PGENRM_EMBEDDER_RUNTIME=onnx` or `onnx-int8`).

Only the transformer changes: texts are tokenised as the sentence-transformers model does
(same truncation, same ids: `_tokens`) and its token vectors mean-pooled over the attention mask
and L2-normalised as sentence-transformers does for a mean-pooling model, so float32 vectors
match the torch runtime's and the split reading can pool a span of the same token vectors.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from service.core._onnx_export import INPUTS, OUTPUT
from service.core._tokens import Tokens

Runtime = Literal["torch", "onnx", "onnx-int8"]
F32 = npt.NDArray[np.float32]


class OnnxTransformer:
    """The exported transformer, run by onnxruntime on `threads` intra-op threads."""

    def __init__(self, tokens: Tokens, path: Path, *, dim: int, threads: int) -> None:
        self._tokens = tokens
        self._dim = dim
        self.path = path
        self._inputs = [name for name in INPUTS if name in tokens.preprocess(["a"])]
        self._threads = threads
        self._sessions: dict[int, Any] = {}
        self._lock = threading.Lock()
        self._session()  # load now: a bad export fails at start-up, not on the first request

    def encode(self, texts: Sequence[str], batch_size: int) -> F32:
        """Mean-pooled, L2-normalised sentence vectors."""
        out = np.empty((len(texts), self._dim), dtype=np.float32)
        for rows, hidden, mask in self._run(texts, batch_size):
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[rows] = pooled
        return out

    def token_embeddings(self, texts: Sequence[str], batch_size: int) -> list[F32]:
        """Each text's token vectors, [CLS] to [SEP] (no padding)."""
        out: list[F32] = [np.empty((0, 0), dtype=np.float32)] * len(texts)
        for rows, hidden, mask in self._run(texts, batch_size):
            for row, tokens, length in zip(rows, hidden, mask.sum(axis=1), strict=True):
                out[row] = tokens[: int(length)]
        return out

    def _run(
        self, texts: Sequence[str], batch_size: int
    ) -> Iterator[tuple[list[int], F32, npt.NDArray[np.int64]]]:
        """(positions in `texts`, token vectors, attention mask) per batch of similar lengths
        (longest first, as sentence-transformers batches: less padding)."""
        session = self._session()
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            features = self._tokens.preprocess([texts[i] for i in rows])
            feeds = {name: features[name] for name in self._inputs}
            (hidden,) = session.run([OUTPUT], feeds)
            yield rows, np.asarray(hidden, dtype=np.float32), feeds["attention_mask"]

    def _session(self) -> Any:
        """The session for this thread's priority. onnxruntime's intra-op threads are made with
        the session and inherit the priority of the thread that made it: background batches
        (service.core.priority) get a session made on a background thread, so that their work
        stays at background priority, as torch's per-caller OpenMP threads do."""
        nice = _nice()
        with self._lock:
            session = self._sessions.get(nice)
            if session is None:
                session = self._sessions[nice] = self._new_session()
            return session

    def _new_session(self) -> Any:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        # No arena: it keeps the largest batch's buffers (~230 MB) for the process's life; the
        # allocator's freed memory goes back to the system (service.core._native_memory).
        options.enable_cpu_mem_arena = False
        # Idle intra-op threads sleep instead of spinning: the cores are shared with the
        # request threads' own work and the other workers.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return onnxruntime.InferenceSession(
            str(self.path), options, providers=["CPUExecutionProvider"]
        )

    @property
    def sessions(self) -> int:
        """Sessions made so far (one per thread priority that ran a batch)."""
        return len(self._sessions)


def check_mean_pooling(model: Any) -> None:
    """The pooling done here is a mean over tokens: refuse models that pool otherwise."""
    modules = [type(m).__name__ for m in model]
    pooling = model[1] if len(modules) > 1 else None
    if (
        modules[2:] not in ([], ["Normalize"])
        or getattr(pooling, "pooling_mode", None) != "mean"
        or not hasattr(model[0], "auto_model")
    ):
        raise ValueError(
            f"the onnx runtimes read mean-pooling transformer models only, not {modules}"
        )


def default_threads() -> int:
    """Intra-op threads as torch would pick them (OMP_NUM_THREADS, else the usable cores),
    without importing torch."""
    configured = os.environ.get("OMP_NUM_THREADS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _nice() -> int:
    try:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    except (AttributeError, OSError):  # not Linux: one priority
        return 0
