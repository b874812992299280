"""Run the simulator (`service.testing.simulator`) as a subprocess on a free loopback port.

The simulator stands in for the P-GenRM-8B server (see its module docstring). This helper owns
the process: it starts it, waits for `/health`, exposes its URL and its control endpoints, and
always stops it (terminate, then kill) however the caller exits.

    with Simulator(latency_s=0.05) as sim:
        httpx.post(f"{sim.url}/v1/chat/completions", json=...)
        sim.configure(error_rate=0.5)
        print(sim.stats()["max_in_flight"])

In a test module, `tests.fixtures.simulator_fixture(scope="module", latency_s=0.01)` makes it a
pytest fixture.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from types import TracebackType
from typing import IO, Any

import httpx

from service.testing._ports import REPO, free_port
from service.testing._processes import stop, wait_ready

DEFAULT_MODEL = "pgenrm-simulator"


def settings_args(settings: dict[str, Any]) -> list[str]:
    """Settings as simulator flags: `latency_s=0.2` -> `--latency-s 0.2`, `down=True` ->
    `--down`, `health_endpoint=False` -> `--no-health-endpoint`."""
    args: list[str] = []
    for name, value in settings.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            args += [flag if value else "--no-" + name.replace("_", "-")]
        elif isinstance(value, list | tuple):
            args += [flag, ",".join(map(str, value))]
        else:
            args += [flag, str(value)]
    return args


class SimulatorStartError(RuntimeError):
    pass


class Simulator:
    """One simulator process. `start()` (or `with`) launches it; `stop()` is always safe."""

    def __init__(
        self,
        *,
        model: str = DEFAULT_MODEL,
        host: str = "127.0.0.1",
        startup_timeout_s: float = 30.0,
        **settings: Any,
    ) -> None:
        self.model, self.host, self.startup_timeout_s = model, host, startup_timeout_s
        self.settings = settings
        self.port: int | None = None
        self.initial_config: dict[str, Any] = {}
        self._proc: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the simulator is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, **settings: Any) -> Simulator:
        """Launch with the constructor's settings updated by these; returns self."""
        if self._proc is not None:
            raise RuntimeError("the simulator is already started")
        self.settings.update(settings)
        try:
            for attempt in range(3):  # the free port may be taken between probe and bind
                try:
                    self._launch()
                    break
                except SimulatorStartError as error:
                    if "address already in use" not in str(error).lower() or attempt == 2:
                        raise
                    self.stop()
            self.initial_config = self.config()
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self) -> None:
        self.port = free_port(self.host)
        command = [
            sys.executable,
            "-m",
            "service.testing.simulator",
            "--host",
            self.host,
            "--port",
            str(self.port),
        ]
        command += ["--model", self.model, *settings_args(self.settings)]
        self._output = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        self._proc = subprocess.Popen(
            command, cwd=REPO, stdout=self._output, stderr=subprocess.STDOUT
        )
        # Any answer (200, or 503 when started `down`) means it is serving.
        wait_ready(
            self._proc,
            lambda: httpx.get(f"{self.url}/health", timeout=1.0).status_code > 0,
            what="simulator",
            timeout_s=self.startup_timeout_s,
            output=self.output,
            error=SimulatorStartError,
            interval_s=0.05,
        )

    def output(self) -> str:
        """What the process printed so far (stdout and stderr together)."""
        if self._output is None or self._output.closed:
            return ""
        self._output.seek(0)
        return self._output.read().decode(errors="replace")

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.request(method, f"{self.url}{path}", json=body, timeout=10.0)
        if response.status_code != 200:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code}: {response.text}")
        return response.json()

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change settings at run time (partial update); returns the whole new config."""
        config: dict[str, Any] = self._call("POST", "/sim/config", settings)
        return config

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = self._call("GET", "/sim/config")
        return config

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._call("GET", "/sim/stats")
        return stats

    def reset(self, *, config: bool = False) -> None:
        """Clear the stats (and restart the fault sequence); `config=True` also restores the
        settings the process started with."""
        if config:
            self.configure(**self.initial_config)
        self._call("POST", "/sim/reset")

    def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Block until no chat request is in flight (e.g. after a client gave up on a stall)."""
        deadline = time.monotonic() + timeout_s
        while self.stats()["in_flight"]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"requests still in flight after {timeout_s} s")
            time.sleep(0.02)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Terminate (graceful), then kill if it lingers; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            stop(proc, timeout_s)
        if self._output is not None:
            self._output.close()
            self._output = None

    def kill(self) -> None:
        """Kill at once (SIGKILL), as a crashed server would vanish."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        self.stop()

    def __enter__(self) -> Simulator:
        return self if self.running else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
