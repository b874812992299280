"""Native memory bounds: oneDNN cache caps set (an operator's own values kept), one trimmer."""

from __future__ import annotations

import os
import threading

from service.core._native_memory import bound_native_memory


def test_caps_are_set_once_and_a_single_trimmer_runs() -> None:
    before = os.environ.get("LRU_CACHE_CAPACITY")
    bound_native_memory()
    bound_native_memory()  # idempotent
    assert int(os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"]) >= 1
    if before is not None:  # an operator's value wins
        assert os.environ["LRU_CACHE_CAPACITY"] == before
    trimmers = [t for t in threading.enumerate() if t.name == "malloc-trim"]
    assert len(trimmers) == 1 and trimmers[0].daemon and trimmers[0].is_alive()
