"""`pgenrm`: the command line (serve, keys new, eval, compare, train-embedded, train-meta,
prototypes learn)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import ValidationError

if TYPE_CHECKING:
    from service.core.config import Settings


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
    refusal = _exposure(settings)
    if refusal is not None:
        print(f"pgenrm: {refusal}", file=sys.stderr)
        return 2
    serve(settings, overrides)
    return 0


def _exposure(settings: Settings) -> str | None:
    """Why the server must not start: unusable keys, or no keys on a non-loopback address
    without PGENRM_INSECURE (then anyone who can connect could score and read users)."""
    from service.core.keys import KeyConfigError, is_loopback, load_keys

    inline = settings.api_keys.get_secret_value() if settings.api_keys else None
    try:
        keyring = load_keys(settings.api_keys_file, inline)
    except KeyConfigError as error:
        return str(error)
    if keyring.empty and not is_loopback(settings.host) and not settings.insecure:
        return (
            f"refusing to listen on {settings.host} with no API keys: configure keys "
            "(PGENRM_API_KEYS_FILE; `pgenrm keys new` makes one), listen on 127.0.0.1, or set "
            "PGENRM_INSECURE=true to serve anyone who can connect"
        )
    return None


def _keys_new(args: argparse.Namespace) -> int:
    from pydantic import ValidationError as Invalid

    from service.core.keys import ApiKey, KeyLimits, digest, new_secret

    secret = new_secret()
    try:
        entry = ApiKey(
            name=args.name,
            tenant=args.tenant,
            sha256=digest(secret),
            scopes=frozenset(s.strip() for s in args.scopes.split(",") if s.strip()),
            limits=KeyLimits(
                requests_per_s=args.requests_per_s,
                cost_per_minute=args.cost_per_minute,
                max_concurrent_expensive=args.max_concurrent_expensive,
            ),
        )
    except Invalid as error:
        print(f"pgenrm: invalid key:\n{error}", file=sys.stderr)
        return 2
    print(f"secret (shown once; hand it to the caller): {secret}", file=sys.stderr)
    print("entry for the `keys` list of PGENRM_API_KEYS_FILE:", file=sys.stderr)
    print(json.dumps(entry.model_dump(mode="json", exclude_none=True), sort_keys=True))
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

    keys = commands.add_parser("keys", help="API keys")
    key_actions = keys.add_subparsers(dest="action", required=True)
    new = key_actions.add_parser(
        "new", help="make a secret and its (hashed) entry for PGENRM_API_KEYS_FILE"
    )
    new.add_argument("--name", required=True, help="shown in logs and errors (not secret)")
    new.add_argument("--tenant", required=True, help="the namespace of the users it stores")
    new.add_argument(
        "--scopes", default="score,users", help="comma-separated: score, users, compare, admin"
    )
    new.add_argument("--requests-per-s", type=float, help="default PGENRM_DEFAULT_REQUESTS_PER_S")
    new.add_argument("--cost-per-minute", type=int, help="default PGENRM_DEFAULT_COST_PER_MINUTE")
    new.add_argument(
        "--max-concurrent-expensive",
        type=int,
        help="default PGENRM_DEFAULT_MAX_CONCURRENT_EXPENSIVE",
    )
    new.set_defaults(run=_keys_new)

    from service.offline.evaluation import command as eval_command

    evaluate = commands.add_parser("eval", help="pairwise accuracy on preference rows")
    eval_command.add_arguments(evaluate)
    evaluate.set_defaults(run=eval_command.run)

    from service.offline.comparison import command as compare_command

    ab = commands.add_parser("compare", help="A/B comparison of response variants over users")
    compare_command.add_arguments(ab)
    ab.set_defaults(run=compare_command.run)

    from service.offline.embedded_training import command as train_command

    learn = commands.add_parser("train-embedded", help="learn the embedded backend's parameters")
    train_command.add_arguments(learn)
    learn.set_defaults(run=train_command.run)

    from service.offline.meta_training import command as meta_command

    meta = commands.add_parser(
        "train-meta", help="fit MetaRM (aggregation: meta) on ukp_convarg's feedback"
    )
    meta_command.add_arguments(meta)
    meta.set_defaults(run=meta_command.run)

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
