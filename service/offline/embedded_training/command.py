"""`pgenrm train-embedded`: command-line wrapper around `training.train`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from service.backends.embedded.params import DEFAULT_PARAMS_PATH
from service.offline._args import add_training_data_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_training_data_argument(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_PARAMS_PATH,
        help=f"params file to write (default: the packaged {DEFAULT_PARAMS_PATH.name})",
    )
    parser.add_argument(
        "--embedder", default="minilm", help="'minilm' or a sentence-transformers path"
    )
    parser.add_argument(
        "--runtime",
        choices=("torch", "onnx", "onnx-int8"),
        help="embedder runtime (default: PGENRM_EMBEDDER_RUNTIME's, as the service runs it)",
    )
    parser.add_argument(
        "--max-seq-length",
        type=int,
        help="tokens per text (default: PGENRM_EMBEDDER_MAX_SEQ_LENGTH's, as the service)",
    )
    parser.add_argument(
        "--no-calibrate",
        action="store_true",
        help="keep the default trust in short histories (skip the val search)",
    )
    parser.add_argument("--embed-cache", type=Path, help="embedding cache file (default: ~/.cache)")
    parser.add_argument("--no-embed-cache", action="store_true", help="embed everything afresh")
    parser.add_argument(
        "--content-views",
        default="answer",
        help="what the content view embeds per answer: qa (in its question), answer (alone), "
        "or both (comma-separated); each costs one embedding per scored text",
    )
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from service.core.config import Settings
    from service.core.embedder import default_disk_cache, load_embedder
    from service.core.rows import DataError
    from service.offline.embedded_training.training import TrainConfig, train

    cache = None if args.no_embed_cache else (args.embed_cache or default_disk_cache())
    views = tuple(v.strip() for v in args.content_views.split(",") if v.strip())
    config = TrainConfig(calibrate=not args.no_calibrate, content_views=views)
    try:
        # The vectors the params learn from must be the ones the service computes: the same
        # runtime, length and precision as its settings, unless asked otherwise.
        settings = Settings()
        embedder = load_embedder(
            args.embedder,
            disk_cache=cache,
            max_seq_length=args.max_seq_length or settings.embedder_max_seq_length,
            runtime=args.runtime or settings.embedder_runtime,
            precision=settings.embedder_precision,
            onnx_dir=settings.embedder_onnx_dir,
        )
        params = train(args.data, args.out, embedder, config, progress=not args.no_progress)
    except (DataError, ValueError) as error:
        print(f"pgenrm train-embedded: {error}", file=sys.stderr)
        return 2
    manifest = params.manifest
    summary = {k: manifest[k] for k in ("created_at", "rows", "users", "train_seconds")}
    summary |= {
        "version": params.version,
        "experts": [
            {"label": e.label, "pairs": e.n_pairs, "c": list(e.regularisation)}
            for e in params.experts
        ],
        "calibration": manifest["calibration_search"],
        "out": str(args.out),
        "bytes": args.out.stat().st_size,
        "data": [{k: d[k] for k in ("path", "sha256", "rows_used")} for d in manifest["data"]],
    }
    print(json.dumps(summary, indent=2))
    return 0
