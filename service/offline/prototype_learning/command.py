"""`pgenrm prototypes learn`: the command-line wrapper around `job.learn_job`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from service.offline._args import add_training_data_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_training_data_argument(parser)
    parser.add_argument("--out", required=True, type=Path, help="artefact root directory")
    parser.add_argument(
        "--k", type=int, default=50, help="number of prototypes (at most one per user)"
    )
    parser.add_argument("--backend", help="backend writing the analyses (default PGENRM_BACKEND)")
    parser.add_argument("--embedder", help="sentence-transformers model (default PGENRM_EMBEDDER)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--history-k", type=int, default=3, help="history pairs per analysis")
    parser.add_argument("--max-pairs-per-user", type=int, help="cap very active users (seeded)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")


async def _run(args: argparse.Namespace) -> int:
    from prototypes.learn import LearnConfig
    from service.backends.embedded.backend import EmbeddedBackend
    from service.core.config import Settings
    from service.core.embedder import default_disk_cache
    from service.factory import build_backend, build_embedded
    from service.offline.prototype_learning.job import JobConfig, learn_job

    overrides: dict[str, object] = {"embedder_disk_cache": default_disk_cache()}
    if args.backend:
        overrides["backend"] = args.backend
    if args.embedder:
        overrides["embedder"] = args.embedder
    settings = Settings(**overrides)  # type: ignore[arg-type]
    backend = build_backend(settings)
    await backend.start()
    embedded = backend if isinstance(backend, EmbeddedBackend) else build_embedded(settings)
    await embedded.start()
    config = JobConfig(
        learn=LearnConfig(k=args.k, epochs=args.epochs, seed=args.seed),
        history_k=args.history_k,
        max_pairs_per_user=args.max_pairs_per_user,
        seed=args.seed,
    )
    try:
        folder = await learn_job(
            args.data, args.out, backend, embedded.embedder, config, progress=not args.no_progress
        )
    finally:
        await backend.close()
    manifest = json.loads((folder / "manifest.json").read_text())
    files = sorted(p.name for p in folder.iterdir())
    print(
        json.dumps(
            {
                "artefact": str(folder),
                "version": manifest["version"],
                "k": manifest["k"],
                "counts": manifest["counts"],
                "index": manifest["index"],
                "last_epoch": (manifest["learn_history"] or [{}])[-1],
                "files": files,
                "seconds": manifest["seconds"],
            },
            indent=2,
        )
    )
    return 0


def run(args: argparse.Namespace) -> int:
    from service.core.rows import DataError

    try:
        return asyncio.run(_run(args))
    except (DataError, ValueError) as error:
        print(f"pgenrm prototypes learn: {error}", file=sys.stderr)
        return 2
