"""pytest fixtures around the real processes of `service.testing` (Redis, the simulator)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest

from service.testing.redis_process import RedisServer
from service.testing.simulator_process import DEFAULT_MODEL, Simulator

Scope = Literal["session", "package", "module", "class", "function"]


def redis_server() -> Iterator[RedisServer]:
    """A started `redis-server`; a skip that says how to get it when the binary is missing, or
    a failure under PGENRM_REQUIRE_REDIS=1 (set by `scripts/test`, which installs it)."""
    if shutil.which("redis-server") is None:
        if os.environ.get("PGENRM_REQUIRE_REDIS") == "1":
            pytest.fail("redis-server is required (scripts/test installs it with apt-get)")
        pytest.skip("redis-server not installed: apt-get install -y redis-server")
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.cleanup()


def simulator_fixture(
    scope: Scope = "module", *, model: str = DEFAULT_MODEL, **settings: Any
) -> Callable[[], Iterator[Simulator]]:
    """A pytest fixture yielding a started `Simulator`; assign it to a name in a test module:

    simulator = simulator_fixture(scope="module", latency_s=0.01)
    """

    def fixture() -> Iterator[Simulator]:
        with Simulator(model=model, **settings) as sim:
            yield sim

    return pytest.fixture(scope=scope)(fixture)
