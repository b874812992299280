"""bench/capacity.py (run as the README's worked example runs it): the table's arithmetic."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_capacity_plan_sizes_gpus_and_cores_from_the_inputs() -> None:
    args = ["--rollouts-per-s", "256", "--ind", "8", "--pro", "4", "--group", "8"]
    args += ["--chain-tokens", "700", "--prompt-tokens-ind", "2000", "--prompt-tokens-pro", "3000"]
    args += ["--decode-tokens-per-s", "5000", "--prefill-tokens-per-s", "50000"]
    args += ["--gateway-cpu-ms", "12", "--gpu-utilisation", "0.8", "--cpu-utilisation", "0.5"]
    result = subprocess.run(
        [sys.executable, "-m", "bench.capacity", *args, "--json"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (row,) = json.loads(result.stdout.strip().splitlines()[-1])["rows"]
    calls = 256 / 8
    assert row["score_calls_per_s"] == calls and row["samples_per_s"] == calls * 12
    assert row["decode_tokens_per_s"] == calls * 12 * 700
    assert row["prefill_tokens_per_s"] == calls * (2000 + 4 * 3000)
    busy = calls * 12 * 700 / 5000 + calls * 14000 / 50000
    assert row["gpus"] == math.ceil(busy / 0.8)
    assert row["gateway_cores"] == math.ceil(calls * 12 * 12 / 24 / 1000 / 0.5)
    assert "| 256 | 32.0 | 384 |" in result.stdout  # the markdown table
