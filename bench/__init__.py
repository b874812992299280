"""Benchmark scripts, each run as `python -m bench.NAME [--json]` from the repository root.

They print their figures (with `--json`, one JSON object last on stdout); speed and memory
targets live here, never in timed tests. They use the simulator and real processes of
`service.testing`, never anything under `tests/`.
"""
