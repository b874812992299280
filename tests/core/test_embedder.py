"""The embedder's precision setting: bf16 where the CPU has it, same vectors to 1e-3."""

from __future__ import annotations

import numpy as np
import pytest

from service.core.embedder import SentenceTransformerEmbedder, native_bf16, resolve_precision
from tests.helpers import LONG, SHORT

TEXTS = [LONG, SHORT, "Question: how long should I steep green tea?\nAnswer: " + LONG]


def test_auto_picks_bf16_only_where_the_cpu_computes_it() -> None:
    assert resolve_precision("auto") == ("bfloat16" if native_bf16() else "float32")
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("bfloat16") == "bfloat16"


def test_bf16_vectors_match_float32_and_are_cached_apart() -> None:
    bf16 = SentenceTransformerEmbedder(max_seq_length=256, precision="bfloat16")
    fp32 = SentenceTransformerEmbedder(max_seq_length=256, precision="float32")
    a, b = fp32.encode(TEXTS), bf16.encode(TEXTS)
    assert a.dtype == b.dtype == np.float32
    assert np.linalg.norm(b, axis=1) == pytest.approx(1.0, abs=1e-4)
    assert float((a * b).sum(axis=1).min()) > 0.999
    # Shared caches (Redis, disk) are keyed by the fingerprint: never one precision's vectors
    # served to the other.
    assert bf16.fingerprint != fp32.fingerprint
    assert fp32.fingerprint == "minilm:256"  # float32's disk caches from before stay valid
