"""Reproduce the embedded backend's accuracy table on the shared data in one command.

    .venv/bin/python -m bench.accuracy [--limit N] [--datasets dsp,...] [--data-dir DIR] [--json]

Runs `pgenrm eval`'s harness (both orders, ties wrong, Ind-8) for dsp, hh_rlhf_relabeled and
ukp_convarg at history-k 0, 3 and 8 (dsp also against `normal` and domain-vs-domain), and
ukp_convarg at 3 and 8 once more with the users' `feedback` left out of their histories; plus the
"longer answer wins" baseline on the same pairs. Prints a markdown table, the "never hurts"
check (for every dataset, accuracy at history-k 3 and 8 is at least accuracy at history-k 0
minus 0.5 points) and the targets. The data is read from `../shared/data` beside the checkout
unless `--data-dir` names another folder (a clone elsewhere).
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
REFERENCE = {  # as quoted in the issues
    "dsp": {"per-user LR, all rows, TF-IDF+emb+style (one order)": 81.0},
    "hh_rlhf_relabeled": {"prompt-aware emb, all rows (one order)": 59.6},
    "ukp_convarg": {"majority vote of the other workers on the test pair (an oracle)": 72.8},
}
DATASETS = ("dsp", "hh_rlhf_relabeled", "ukp_convarg")
HISTORY_K = (0, 3, 8)
TARGETS_K8 = {"dsp": 0.80, "hh_rlhf_relabeled": 0.60, "ukp_convarg": 0.72}
NEVER_HURTS_TOLERANCE = 0.005  # accuracy at k 3 and 8 >= accuracy at k 0 minus this


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


def runs(datasets: tuple[str, ...]) -> list[tuple[str, int, bool]]:
    """(dataset, history-k, feedback) per evaluation."""
    out = [(name, k, True) for name in datasets for k in HISTORY_K]
    if "ukp_convarg" in datasets:  # the only set with feedback: measured without it too
        out += [("ukp_convarg", k, False) for k in HISTORY_K if k]
    return out


async def main(
    limit: int | None, datasets: tuple[str, ...] = DATASETS, data_dir: Path = DATA
) -> list[dict[str, Any]]:
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
    loaded: dict[str, Any] = {}
    for name, k, feedback in runs(datasets):
        if name not in loaded:
            loaded[name], _ = load_rows(data_dir / name / "pairs.jsonl.gz")
            if limit is None:
                data = loaded[name]
                await state.engine.warm(
                    [(r.as_pair().prompt, a) for r in data for a in (r.chosen, r.rejected)], True
                )
        data = loaded[name]
        config = EvalConfig(history_k=k, ind=8, limit=limit, feedback=feedback)
        by = "conversation_suffix" if name == "dsp" else None
        label = f"{name} k={k}" + ("" if feedback else " without feedback")
        ours = await evaluate(data, engine, config, by=by, description=label)
        longer = await evaluate(data, LongerWins(), config, by=by, progress=False)
        row = {
            "data": name,
            "history_k": k,
            "feedback": feedback,
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
        print(f"done: {label}: {100 * ours['accuracy']:.1f}%", file=sys.stderr)
    await state.engine.close()
    return rows


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def never_hurts(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per dataset: accuracy at history-k 3 and 8 (with feedback) against k 0 minus 0.5 points."""
    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(r["data"] for r in rows):
        acc = {r["history_k"]: r["accuracy"] for r in rows if r["data"] == name and r["feedback"]}
        if 0 not in acc:
            continue
        checks = {
            f"k{k}": acc[k] >= acc[0] - NEVER_HURTS_TOLERANCE for k in HISTORY_K if k and k in acc
        }
        out[name] = {"k0": acc[0], **{f"acc_k{k}": acc[k] for k in acc if k}, **checks}
        out[name]["pass"] = all(checks.values())
    return out


def table(rows: list[dict[str, Any]]) -> str:
    out = [
        "| data | history-k | feedback | accuracy [95% CI] | macro | ties | vs normal "
        "| domain-vs-domain | longer wins (all / domain-vs-domain) | pairs |",
        "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for r in rows:
        out.append(
            f"| {r['data']} | {r['history_k']} | {'yes' if r['feedback'] else 'no'} "
            f"| {pct(r['accuracy'])} [{pct(r['ci95'][0])}, {pct(r['ci95'][1])}] "
            f"| {pct(r['macro'])} | {pct(r['tie_rate'])} "
            f"| {pct(r.get('vs_normal'))} | {pct(r.get('domain_vs_domain'))} "
            f"| {pct(r['longer_wins'])} / {pct(r.get('longer_wins_domain_vs_domain'))} "
            f"| {r['pairs']} |"
        )
    out += ["", "Never hurts (accuracy at history-k 3 and 8 >= history-k 0 minus 0.5 points):"]
    for name, check in never_hurts(rows).items():
        parts = [f"k0 {pct(check['k0'])}"] + [
            f"k{k} {pct(check[f'acc_k{k}'])} {'ok' if check[f'k{k}'] else 'FAILS'}"
            for k in HISTORY_K
            if k and f"k{k}" in check
        ]
        out.append(f"- {name}: {'PASS' if check['pass'] else 'FAIL'} ({', '.join(parts)})")
    out += ["", "Targets at history-k 8:"]
    for r in rows:
        if r["history_k"] == 8 and r["feedback"] and r["data"] in TARGETS_K8:
            goal = TARGETS_K8[r["data"]]
            met = "met" if r["accuracy"] >= goal else "NOT met"
            out.append(f"- {r['data']}: {pct(r['accuracy'])} >= {pct(goal)}: {met}")
    out.append("")
    out.append(
        "References: "
        + "; ".join(
            f"{d}: " + ", ".join(f"{k} {v}" for k, v in refs.items())
            for d, refs in REFERENCE.items()
        )
    )
    return "\n".join(out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, help="score a seeded subset of N pairs per run")
    parser.add_argument(
        "--datasets", default=",".join(DATASETS), help="comma-separated, of " + ", ".join(DATASETS)
    )
    parser.add_argument(
        "--data-dir", type=Path, default=DATA, help=f"the datasets' folder (default: {DATA})"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    chosen = tuple(d for d in args.datasets.split(",") if d)
    unknown = [d for d in chosen if d not in DATASETS]
    if unknown:
        parser.error(f"unknown datasets: {', '.join(unknown)}")
    missing = [d for d in chosen if not (args.data_dir / d / "pairs.jsonl.gz").is_file()]
    if missing:  # before the embedder loads: a wrong folder fails in a second, not a minute
        parser.error(f"no pairs.jsonl.gz for {', '.join(missing)} under {args.data_dir}")
    result = asyncio.run(main(args.limit, chosen, args.data_dir))
    print(table(result))
    if args.json:
        print(json.dumps({"rows": result, "never_hurts": never_hurts(result)}))
