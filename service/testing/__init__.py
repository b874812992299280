"""Tools for tests and benchmarks: real processes on loopback, never fakes of them.

- `simulator`: an OpenAI-compatible simulator of the P-GenRM-8B server (`python -m
  service.testing.simulator`); `simulator_process.Simulator` runs it as a subprocess.
- `redis_process.RedisServer`: Debian's `redis-server` on a free loopback port.
- `server_process.served`: `pgenrm serve` as a subprocess, ready when `/readyz` says so.

Nothing in the serving path imports this package (an import-linter contract says so).
"""
