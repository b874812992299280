"""Fan-out of one Ind-16,Pro-8 score against the simulator: wall time, calls, gateway CPU.

    .venv/bin/python -m bench.fanout [--latency 0.5] [--repeats 5] [--json]

With a fixed simulated latency L per request (no per-token cost), a dual-granularity score
should take about one L (one n=16 request plus 8 concurrent neighbour requests), where the
authors' release, scoring neighbours one after another, takes about 1 + M = 9 L. Also prints
HTTP calls per score and the gateway process's CPU time per score at zero latency (the
simulator's CPU is another process and not counted). Uses the simulator, never a real vLLM.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from bench._table import print_figures
from service.backends.openai.backend import OpenAIBackend, OpenAIOptions
from service.core.inputs import Message, PreferencePair, ScoringTask
from service.engine.backend import SampleGroup
from service.engine.scaling import Neighbour, NeighbourSource, Scaling
from service.engine.scorer import EngineOptions, ScoringEngine
from service.testing.simulator_process import Simulator

IND, PRO = 16, 8


def pair(i: int, short_wins: bool) -> PreferencePair:
    short = f"Answer {i}: do it in two steps."
    long = f"Answer {i}: " + "First prepare everything carefully, then proceed step by step. " * 6
    chosen, rejected = (short, long) if short_wins else (long, short)
    return PreferencePair((Message("user", f"How do I do task {i}?"),), chosen, rejected)


HISTORY = tuple(pair(i, True) for i in range(3))
TASK = ScoringTask(
    (Message("user", "How should I plan a weekend trip?"),),
    ("Pick a place, book early, pack light.", "Planning a weekend trip well takes some care. " * 8),
)


class FixedNeighbours(NeighbourSource):
    """M fixed neighbour histories: the fan-out is what is measured, not retrieval."""

    @property
    def version(self) -> str | None:
        return "bench"

    async def neighbours(
        self, user_id: str, history: Any, task: ScoringTask, m: int
    ) -> list[Neighbour]:
        return [
            Neighbour(f"n{j}", tuple(pair(10 * j + i, j % 2 == 0) for i in range(3)), 0.9)
            for j in range(m)
        ]


async def serial_release_style(backend: OpenAIBackend, neighbours: list[Neighbour]) -> None:
    """The authors' loop: the individual request, then each neighbour one after another."""
    await backend.generate(SampleGroup("ind", "u", HISTORY, TASK, IND, 1))
    for j, n in enumerate(neighbours):
        await backend.generate(SampleGroup("pro", "u", n.history, TASK, 1, 2 + j, n.label))


async def measure(sim: Simulator, latency: float, repeats: int) -> dict[str, float]:
    backend = OpenAIBackend(OpenAIOptions(urls=(sim.url,), model="pgenrm-simulator"))
    await backend.start()
    source = FixedNeighbours()
    engine = ScoringEngine(backend, source, EngineOptions(parse_retries=0))
    neighbours = await source.neighbours("u", HISTORY, TASK, PRO)
    await engine.score("warm-up", HISTORY, TASK, Scaling(IND, PRO))

    sim.configure(latency_s=latency)
    fanout, serial, calls = [], [], []
    for _ in range(repeats):
        sim.reset()
        started = time.perf_counter()
        out = await engine.score("u", HISTORY, TASK, Scaling(IND, PRO))
        fanout.append((time.perf_counter() - started) / latency)
        calls.append(sim.stats()["requests"])
        assert out.ind.valid == IND and out.pro.valid == PRO, "samples failed"
        started = time.perf_counter()
        await serial_release_style(backend, neighbours)
        serial.append((time.perf_counter() - started) / latency)

    sim.configure(latency_s=0.0)
    cpu = []
    for i in range(200):
        started = time.process_time()
        await engine.score(f"user-{i}", HISTORY, TASK, Scaling(IND, PRO))
        cpu.append((time.process_time() - started) * 1000)
    await backend.close()
    return {
        "latency_s": latency,
        "ind16_pro8_wall_x": statistics.median(fanout),
        "serial_wall_x": statistics.median(serial),
        "calls_per_score": statistics.median(calls),
        "cpu_ms_per_score_median": statistics.median(cpu),
        "cpu_ms_per_score_p90": statistics.quantiles(cpu, n=10)[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.5, help="simulated seconds per request")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    with Simulator() as sim:
        result = asyncio.run(measure(sim, args.latency, args.repeats))
    rows = [
        ("Ind-16,Pro-8 wall time / L (concurrent fan-out)", result["ind16_pro8_wall_x"], "<= 1.3"),
        ("serial neighbour loop (authors' release) / L", result["serial_wall_x"], "~9"),
        ("HTTP calls per score", result["calls_per_score"], f"<= {1 + PRO}"),
        ("gateway CPU ms per score, median (L=0)", result["cpu_ms_per_score_median"], "<= 5"),
        ("gateway CPU ms per score, p90 (L=0)", result["cpu_ms_per_score_p90"], ""),
    ]
    print_figures(
        rows, result, as_json=args.json, digits=2, measure=f"measure (L = {args.latency} s)"
    )


if __name__ == "__main__":
    main()
