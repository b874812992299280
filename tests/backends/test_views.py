"""ViewBuilder: a cold build embeds on a thread of its own; a warm one needs no thread."""

from __future__ import annotations

import numpy as np

from service.backends.embedded.params import load_params
from service.backends.embedded.views import ViewBuilder
from service.core.embedder import Embedder
from tests.helpers import LONG, SHORT


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
