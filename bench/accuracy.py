"""Reproduce the embedded backend's accuracy table on the shared data in one command.

    .venv/bin/python -m bench.accuracy [--limit N] [--json]

Runs `pgenrm eval`'s harness (both orders, ties wrong) for: dsp with 8 history pairs (overall,
against `normal`, domain-vs-domain), dsp with no history (the user-blind contrast), and
hh_rlhf_relabeled with 8 pairs; plus the "longer answer wins" baseline on the same pairs. Prints
a markdown table next to the reference points quoted in the project's issue.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from service.core.inputs import PreferencePair, ScoringTask
from service.core.rows import load_rows
from service.engine.scaling import Scaling
from service.offline.evaluation.harness import EvalConfig, evaluate
from service.offline.evaluation.scorers import EngineScorer, PairScorer, Scored

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REFERENCE = {  # pooled, one order, as quoted in the issue
    "dsp": {"longer wins": 59.5, "per-user LR, all rows, TF-IDF+emb+style": 81.0},
    "hh_rlhf_relabeled": {"longer wins": 51.3, "prompt-aware emb, all rows": 59.6},
}


class LongerWins(PairScorer):
    @property
    def label(self) -> str:
        return "longer answer wins"

    async def score(
        self, user_id: str, history: tuple[PreferencePair, ...], task: ScoringTask, scaling: Scaling
    ) -> Scored:
        return Scored([float(len(c)) for c in task.candidates], 0, 0)


def _domain_vs_domain(result: dict[str, Any]) -> float:
    pairs = {k: n for k, n in result["by_pairs"].items() if k != "normal"}
    total = sum(pairs.values())
    return sum(result["by"][k] * n for k, n in pairs.items()) / total if total else float("nan")


async def main(limit: int | None) -> list[dict[str, Any]]:
    from service.app import build_state
    from service.core.config import Settings
    from service.core.embedder import default_disk_cache

    state = build_state(
        Settings(
            embedder_cache_size=500_000,
            embedder_cache_bytes=1 << 30,
            embedder_disk_cache=default_disk_cache(),
        )
    )
    await state.engine.start()
    engine = EngineScorer(state.engine)
    rows: list[dict[str, Any]] = []
    for name, k in (("dsp", 8), ("dsp", 0), ("hh_rlhf_relabeled", 8)):
        data, _ = load_rows(DATA / name / "pairs.jsonl.gz")
        if limit is None:
            await state.engine.warm(
                [(r.as_pair().prompt, a) for r in data for a in (r.chosen, r.rejected)], True
            )
        config = EvalConfig(history_k=k, ind=8, limit=limit)
        by = "conversation_suffix" if name == "dsp" else None
        ours = await evaluate(data, engine, config, by=by, description=f"{name} k={k}")
        longer = await evaluate(data, LongerWins(), config, by=by, progress=False)
        row = {
            "data": name,
            "history_k": k,
            "accuracy": ours["accuracy"],
            "ci95": ours["ci95"],
            "macro": ours["macro_accuracy"],
            "tie_rate": ours["tie_rate"],
            "pairs": ours["pairs"],
            "longer_wins": longer["accuracy"],
        }
        if by:
            row["vs_normal"] = ours["by"].get("normal")
            row["domain_vs_domain"] = _domain_vs_domain(ours)
            row["longer_wins_domain_vs_domain"] = _domain_vs_domain(longer)
        rows.append(row)
        print(f"done: {name} k={k}: {100 * ours['accuracy']:.1f}%", file=sys.stderr)
    await state.engine.close()
    return rows


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| data | history-k | accuracy [95% CI] | macro | ties | vs normal | domain-vs-domain "
        "| longer wins (all / domain-vs-domain) | pairs |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in rows:
        out.append(
            f"| {r['data']} | {r['history_k']} | {pct(r['accuracy'])} "
            f"[{pct(r['ci95'][0])}, {pct(r['ci95'][1])}] | {pct(r['macro'])} "
            f"| {pct(r['tie_rate'])} "
            f"| {pct(r.get('vs_normal'))} | {pct(r.get('domain_vs_domain'))} "
            f"| {pct(r['longer_wins'])} / {pct(r.get('longer_wins_domain_vs_domain'))} "
            f"| {r['pairs']} |"
        )
    out.append("")
    out.append(
        "References (issue, pooled one order): "
        + "; ".join(
            f"{d}: " + ", ".join(f"{k} {v}" for k, v in refs.items())
            for d, refs in REFERENCE.items()
        )
    )
    out.append("Targets: dsp >= 80 with history-k 8; hh_rlhf_relabeled >= 60.")
    return "\n".join(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, help="score a seeded subset of N pairs per run")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    result = asyncio.run(main(args.limit))
    print(table(result))
    if args.json:
        print(json.dumps({"rows": result}))
