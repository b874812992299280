"""Command-line arguments shared by the offline commands."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_training_data_argument(parser: argparse.ArgumentParser) -> None:
    """`--data`, repeatable: the rows a learning command reads (train/val splits only)."""
    parser.add_argument(
        "--data",
        required=True,
        action="append",
        type=Path,
        help="rows file (repeatable); only train/val rows are used",
    )
