"""Warm calls need no thread (neither for their embeddings nor for the call itself) and reuse
what the builder kept per text."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp

from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.backends.embedded.usermodel import WORDING, ExpertBank
from service.backends.embedded.views import TextViews, ViewBuilder, _stack
from service.cache.memory import MemoryStore
from service.core.embedder import Embedder
from service.engine.backend import SampleGroup
from service.engine.cache import Caches
from tests.helpers import LONG, SHORT, prefers, task

_R = TypeVar("_R")


def test_texts_already_embedded_are_built_without_the_embedding_thread(
    embedder: Embedder,
) -> None:
    params = load_params()
    prompts, answers = ["How do I plan a trip?"] * 2, [f"{LONG} (views test)", f"{SHORT} (views)"]

    cold = ViewBuilder(params, embedder)
    first = cold.build(prompts, answers)
    assert cold._embedding is not None  # new texts: embedded beside the style and wording rows
    cold.close()

    warm = ViewBuilder(params, embedder)  # the embedder now holds these texts' vectors
    again = warm.build(prompts, answers)
    assert warm._embedding is None  # no thread started, none handed work
    np.testing.assert_array_equal(again.content, first.content)
    np.testing.assert_array_equal(again.style, first.style)


async def test_a_warm_call_is_computed_on_the_loop_and_anything_else_on_a_thread(
    embedder: Embedder,
) -> None:
    """Counts hand-offs: a call that embeds goes to a thread; the same user's next call, with
    every vector in memory and the history prepared, is computed inline; a large one is not."""
    backend = EmbeddedBackend(lambda: embedder, load_params(), Caches(MemoryStore()))
    await backend.start()
    handed: list[str] = []
    to_thread = backend._in_thread

    async def counted(fn: Callable[..., _R], *args: Any) -> _R:
        handed.append(fn.__name__)
        return await to_thread(fn, *args)

    backend._in_thread = counted  # type: ignore[method-assign]
    history = prefers("short")
    first = SampleGroup("ind", "u", history, task(LONG, f"{SHORT} (warm test)"), 8, seed=1)
    cold = await backend.generate(first)
    assert handed == ["_generate"]
    warm = await backend.generate(first)
    assert handed == ["_generate"]  # no new hand-off
    assert [c.overall for c in warm] == [c.overall for c in cold]
    many = tuple(f"{SHORT} (warm test {i})" for i in range(9))
    await backend.generate(SampleGroup("ind", "u", history, task(LONG, *many), 8, seed=1))
    await backend.generate(SampleGroup("ind", "u", history, task(LONG, *many), 8, seed=1))
    assert handed == ["_generate"] * 3  # 8 samples x 10 candidates: too large for the loop
    await backend.close()


def test_kept_wording_utilities_are_the_products_over_all_the_texts(embedder: Embedder) -> None:
    """Each text's wording utilities, computed with whichever texts it first came with and
    kept, are bit for bit what one product over the request's texts gives."""
    params = load_params()
    bank = ExpertBank(params)
    builder = ViewBuilder(params, embedder, wording_experts=bank.predict.wording)
    builder.build(["Tea?"], [f"{SHORT} (kept alone)"])  # first seen alone
    prompts = ["Tea?"] * 3
    answers = [f"{LONG} (kept)", f"{SHORT} (kept alone)", f"{LONG} (kept)"]
    views = builder.build(prompts, answers)
    assert views.wording_scores is not None and views.wording_scores.shape == (3, len(bank.labels))
    kept = bank.view_scores(views)[WORDING]
    multiplied = bank.view_scores(TextViews(views.style, views.content, views.wording))[WORDING]
    np.testing.assert_array_equal(kept, multiplied)
    head = bank.view_scores(views.head(2))[WORDING]
    np.testing.assert_array_equal(head, multiplied[:, :2])
    builder.close()


def test_stacked_wording_rows_are_scipys_vstack_at_its_index_width() -> None:
    """The warm path's stacking of kept one-row CSR matrices: scipy's own vstack, entry for
    entry, with the 32-bit indices scipy itself would keep (given 64-bit ones it scans them)."""
    rng = np.random.default_rng(0)
    rows = [
        sp.csr_matrix(
            (rng.random(n), (np.zeros(n, np.int64), rng.choice(2**18, n, replace=False))),
            shape=(1, 2**18),
        )
        for n in (5, 0, 40)
    ]
    stacked = _stack(rows)
    expected = sp.vstack(rows, format="csr")
    assert stacked.shape == expected.shape == (3, 2**18)
    assert stacked.indptr.dtype == stacked.indices.dtype == np.int32
    np.testing.assert_array_equal(stacked.toarray(), expected.toarray())
    assert _stack([]).shape == (0, 0)
