"""Memory gauges: the container limit as cgroup v2 and v1 write it, and this process's RSS."""

from __future__ import annotations

import math
from pathlib import Path

from service.core.metrics import Metrics
from service.core.process_metrics import memory_limit_bytes, resident_bytes, sample


def test_the_limit_reads_cgroup_v2_and_v1_and_no_limit_is_infinite(tmp_path: Path) -> None:
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    v2.write_text("1073741824\n")
    assert memory_limit_bytes((v2, v1)) == 1 << 30
    v2.write_text("max\n")
    assert math.isinf(memory_limit_bytes((v2, v1)))
    v2.unlink()
    v1.write_text("9223372036854771712\n")  # cgroup v1's "unlimited"
    assert math.isinf(memory_limit_bytes((v2, v1)))
    v1.write_text("536870912\n")
    assert memory_limit_bytes((v2, v1)) == 1 << 29
    assert math.isinf(memory_limit_bytes((tmp_path / "absent",)))


def test_sample_sets_rss_and_cache_bytes() -> None:
    metrics = Metrics()
    sample(metrics, lambda: {"store": 123, "embeddings": 0})
    registry = metrics.registry
    rss = registry.get_sample_value("pgenrm_worker_resident_memory_bytes")
    assert rss is not None and rss > 10 << 20 and resident_bytes() > 0
    assert registry.get_sample_value("pgenrm_cache_bytes", {"cache": "store"}) == 123
