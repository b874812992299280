"""`pgenrm compare`: A/B comparison of named response variants over many users' rows.

Rows are what `POST /v1/compare` takes, one JSON object a line, with no bound on their number;
each is scored in process (or through `--url`'s `/v1/score`) and the report is the endpoint's
answer, written as compare.json, compare.csv and compare.html.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from service.api.comparing import default_scaling, stored_lookup, to_row
from service.api.errors import validation_error
from service.api.schemas.compare import CompareRow
from service.comparison import report
from service.comparison.highlights import headline, interval, leaders, pct, signed, top_drivers
from service.comparison.results import EVERY_OTHER, Comparison, PairStat
from service.comparison.rows import Row, RowsError, read_rows
from service.comparison.run import EngineRowScorer, RowScorer, compare, variants_of
from service.core.errors import PgenrmError
from service.core.keys import DEFAULT_TENANT
from service.engine.scaling import Scaling
from service.offline._local import add_engine_arguments, start_local
from service.offline.comparison.remote import HttpRowScorer, RemoteRefused

SHOWN_DRIVERS = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="rows, .jsonl or .jsonl.gz")
    parser.add_argument("--out", type=Path, help="directory for compare.json, .csv and .html")
    parser.add_argument("--url", help="score through a running server's /v1/score instead")
    parser.add_argument("--ind", type=int, help="individual-level samples per row (Ind-N)")
    parser.add_argument(
        "--segment", help="attribute to group rows by (`user`: the user); default: prototype"
    )
    parser.add_argument(
        "--baseline",
        nargs="?",
        const="",
        help="compare each variant with this one (bare: the first variant); default: all pairs",
    )
    parser.add_argument("--concurrency", type=int, default=4, help="rows in flight")
    parser.add_argument("--limit", type=int, help="only the first N rows")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap intervals")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--json", action="store_true", help="print one JSON object last on stdout")
    parser.add_argument("--no-progress", action="store_true")
    add_engine_arguments(parser)


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_row(data: dict[str, Any]) -> Row:
    """A line's object as a row; a ValueError says what is wrong, naming the field."""
    try:
        return to_row(CompareRow.model_validate(data))
    except ValidationError as error:
        # a problem of the whole row is the API's `body`; a file's line says it by its number
        message = validation_error(error.errors()).message.removeprefix("`body`: ")
        raise ValueError(message) from None


async def _scorer(args: argparse.Namespace, stack: AsyncExitStack) -> RowScorer:
    """The row scorer `--url` asks for, or the engine in process; `stack` closes it."""
    if args.url:
        remote = HttpRowScorer(args.url, ind=args.ind, concurrency=args.concurrency)
        stack.push_async_callback(remote.aclose)
        return remote
    state = await start_local(args)
    stack.push_async_callback(state.engine.close)
    stack.push_async_callback(state.user_service.store.close)
    scaling = default_scaling(state.settings, state.engine.prototypes_version is not None)
    if args.ind is not None:
        scaling = Scaling(args.ind, scaling.pro)
    users = state.score_service.users
    lookup = stored_lookup(users, DEFAULT_TENANT, state.settings.max_history)
    return EngineRowScorer(state.engine, scaling, lookup=lookup)


def describe(c: Comparison) -> str:
    """The headline numbers: each variant's win rate overall, per user and per segment, and
    what drives it."""
    against = headline(c)
    shown = "every other variant" if against == EVERY_OTHER else against
    lines = [
        f"compare: {c.rows} rows ({c.compared} compared, {c.failed} failed) in "
        f"{c.elapsed_s:.1f} s, {c.scorer}",
        f"win rate against {shown} (ties half, 95% bootstrap CI, n rows):",
    ]
    groups: dict[str, list[str]] = {}
    for s in c.pairs:
        if s.against == against and s.win_rate is not None:
            name = "overall" if s.scope == "overall" else f"{s.scope} {s.group}"
            groups.setdefault(name, []).append(
                f"{s.variant} {pct(s.win_rate)} {interval(s.win_rate_ci95)} n={s.n}"
            )
    lines += [f"  {name}: " + ", ".join(parts) for name, parts in groups.items()]
    lines.append("what drives it (weighted criterion score, mean delta [95% CI]):")
    overall: list[PairStat | tuple[str, str]] = [(v, against) for v in c.variants if v != against]
    for stat in [*overall, *leaders(c)]:
        top = top_drivers(c, stat, SHOWN_DRIVERS)
        if top:
            name = "overall" if isinstance(stat, tuple) else f"{stat.scope} {stat.group}"
            found = ", ".join(
                f"{d.label} {signed(d.mean_delta)} {interval(d.ci95, 'signed')}" for d in top
            )
            lines.append(f"  {name}, {top[0].variant}: {found}")
    if c.failures:
        lines.append(
            f"failed rows: {c.failed}, e.g. row {c.failures[0].row}: {c.failures[0].reason}"
        )
    return "\n".join(lines)


async def _run(args: argparse.Namespace) -> int:
    try:
        rows = read_rows(args.data, parse_row, args.limit)
    except RowsError as error:
        _say(f"pgenrm compare: {error}")
        return 2
    baseline = args.baseline or (variants_of(rows)[0] if args.baseline == "" else None)
    _say(f"{args.data}: {len(rows)} rows, variants {', '.join(variants_of(rows))}")
    try:
        async with AsyncExitStack() as stack:
            comparison = await compare(
                rows,
                await _scorer(args, stack),
                baseline=baseline,
                segment=args.segment,
                seed=args.seed,
                resamples=args.resamples,
                concurrency=args.concurrency,
                progress=not args.no_progress,
            )
    except (PgenrmError, RemoteRefused) as error:
        _say(f"pgenrm compare: {error}")
        return 2
    _say(describe(comparison))
    if args.out:
        paths = report.write(comparison, args.out)
        _say("wrote " + ", ".join(str(p) for p in paths.values()))
    if args.json:
        print(comparison.model_dump_json())
    return 0


def run(args: argparse.Namespace) -> int:
    return asyncio.run(_run(args))
