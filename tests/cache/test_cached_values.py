"""What the persona cache holds round-trips exactly; a damaged entry is a miss, not an error."""

from __future__ import annotations

import numpy as np
import pytest

from service.backends.embedded.params import load_params
from service.backends.embedded.views import TextViews, ViewBuilder
from service.core.embedder import Embedder
from tests.helpers import LONG, SHORT


def test_views_round_trip_exactly(embedder: Embedder) -> None:
    views = ViewBuilder(load_params(), embedder).build(["Tea?", "Tea?"], [LONG, SHORT])
    back = TextViews.from_bytes(views.to_bytes())
    for a, b in ((views.style, back.style), (views.content, back.content)):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert views.wording is not None and back.wording is not None
    assert (views.wording != back.wording).nnz == 0 and views.wording.shape == back.wording.shape


@pytest.mark.parametrize("cut", [0, 3, 9, 40, -1])
def test_a_damaged_record_is_a_value_error(embedder: Embedder, cut: int) -> None:
    data = ViewBuilder(load_params(), embedder).build(["Tea?"], [SHORT]).to_bytes()
    with pytest.raises(ValueError):
        TextViews.from_bytes(data[:cut])
    with pytest.raises(ValueError):
        TextViews.from_bytes(b"PK\x03\x04" + data)
