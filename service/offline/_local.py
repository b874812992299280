"""The app's state with its engine started, for a batch job that scores in process."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.api.state import AppState


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    """What `start_local` reads: the backend, prototypes and embedding cache."""
    parser.add_argument("--backend", help="backend to score with (default: PGENRM_BACKEND)")
    parser.add_argument("--prototypes", type=Path, help="prototype artefact root (for Pro-M)")
    parser.add_argument("--embed-cache", type=Path, help="embedding cache file (default: ~/.cache)")
    parser.add_argument("--no-embed-cache", action="store_true", help="embed everything afresh")


async def start_local(args: argparse.Namespace) -> AppState:
    """Build the state as the server would (settings from the environment), with a batch job's
    caches, start the engine and load the prototypes if `--prototypes` names an artefact."""
    from service.app import build_state, load_prototypes
    from service.core.config import Settings
    from service.core.embedder import default_disk_cache

    # a batch job's whole corpus stays in memory (500,000 vectors: ~1 GB)
    overrides: dict[str, Any] = {"embedder_cache_size": 500_000, "embedder_cache_bytes": 1 << 30}
    if not args.no_embed_cache:
        overrides["embedder_disk_cache"] = args.embed_cache or default_disk_cache()
    if args.backend:
        overrides["backend"] = args.backend
    if args.prototypes:
        overrides["prototypes_dir"] = args.prototypes
        overrides["prototypes_watch_s"] = 0
    state = build_state(Settings(**overrides))
    await state.engine.start()
    if args.prototypes:
        await load_prototypes(state)
    return state
