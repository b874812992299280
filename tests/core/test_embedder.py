"""The embedder: precision (bf16 where the CPU has it, same vectors to 1e-3), split reading,
and its cache (keyed by digests, bounded in bytes)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from service.core.embedder import (
    Embedder,
    SentenceTransformerEmbedder,
    native_bf16,
    resolve_precision,
)
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


def test_split_encoding_reads_each_text_once_and_pools_the_answer(embedder: Embedder) -> None:
    prefixes = ["Question: How long should I steep green tea?\nAnswer: "] * 2
    answers = [SHORT, LONG]
    whole, span = embedder.encode_split(prefixes, answers)
    plain = embedder.encode([p + a for p, a in zip(prefixes, answers, strict=True)])
    assert np.allclose(whole, plain, atol=1e-5)  # the whole text: the model's own vector
    alone = embedder.encode(answers)
    cosine = (span * alone).sum(axis=1)
    assert np.all(cosine > 0.5) and np.all(cosine < 0.999)  # the answer, read in its question
    again_whole, again_span = embedder.encode_split(prefixes, answers)  # from the cache
    assert np.array_equal(again_span, span) and np.array_equal(again_whole, whole)


def test_the_cache_keeps_no_text_and_no_more_bytes_than_its_budget() -> None:
    budget = 32 * 1024  # ~15 MiniLM vectors with their digests and bookkeeping
    small = SentenceTransformerEmbedder(max_seq_length=64, cache_bytes=budget)
    texts = [f"Answer {i}: steep it for {i % 7 + 1} minutes, then taste." for i in range(60)]
    prefixes = [f"Question {i}: how long?\nAnswer: " for i in range(20)]
    refs = [sys.getrefcount(t) for t in (*texts, *prefixes)]
    _, span = small.encode_split(prefixes, texts[:20])
    first = small.encode(texts)
    assert [sys.getrefcount(t) for t in (*texts, *prefixes)] == refs  # no text stays behind
    held = small.cached(texts)
    assert 0 < len(held) < 60 and set(held) <= set(texts[30:])  # the most recent only
    assert small._cache.nbytes <= budget
    # what it counts covers the vectors it holds (copies, not rows of a batch's matrix)
    assert sum(v.nbytes + sys.getsizeof(v) for v in held.values()) <= small._cache.nbytes
    again = small.encode(texts)  # evicted vectors are computed again, the same
    assert np.allclose(first, again, atol=1e-5)
    assert np.allclose(small.encode_split(prefixes, texts[:20])[1], span, atol=1e-5)
