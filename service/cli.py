"""`pgenrm`: the command line (serve, eval, train-embedded, prototypes learn)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError


def _serve(args: argparse.Namespace) -> int:
    from service.core.config import Settings
    from service.server import serve

    overrides = {
        k: v
        for k, v in {
            "host": args.host,
            "port": args.port,
            "backend": args.backend,
            "workers": args.workers,
        }.items()
        if v is not None
    }
    try:
        settings = Settings(**overrides)
    except ValidationError as error:
        print(f"pgenrm: invalid settings:\n{error}", file=sys.stderr)
        return 2
    serve(settings, overrides)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pgenrm", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP scoring service")
    serve.add_argument("--host", help="bind address (PGENRM_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (PGENRM_PORT, default 8000)")
    serve.add_argument("--backend", help="embedded (default) (PGENRM_BACKEND)")
    serve.add_argument(
        "--workers", type=int, help="server processes, one per core (PGENRM_WORKERS, default 1)"
    )
    serve.set_defaults(run=_serve)

    from service.offline.evaluation import command as eval_command

    evaluate = commands.add_parser("eval", help="pairwise accuracy on preference rows")
    eval_command.add_arguments(evaluate)
    evaluate.set_defaults(run=eval_command.run)

    from service.offline.embedded_training import command as train_command

    learn = commands.add_parser("train-embedded", help="learn the embedded backend's parameters")
    train_command.add_arguments(learn)
    learn.set_defaults(run=train_command.run)

    from service.offline.prototype_learning import command as prototypes_command

    protos = commands.add_parser("prototypes", help="user prototypes (offline learning)")
    actions = protos.add_subparsers(dest="action", required=True)
    learn_protos = actions.add_parser("learn", help="learn a prototype artefact from rows")
    prototypes_command.add_arguments(learn_protos)
    learn_protos.set_defaults(run=prototypes_command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.run(args))
