"""Shared fixtures. Real components only: the bundled MiniLM embedder, real HTTP on loopback."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.core.config import Settings
from service.core.embedder import Embedder, load_embedder

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Stored users go to a throwaway directory, never the developer's ~/.local/state/pgenrm.
_STATE = tempfile.TemporaryDirectory(prefix="pgenrm-test-state-")
os.environ.setdefault("PGENRM_STATE_DIR", _STATE.name)

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The real bundled MiniLM as the service runs it by default (runtime, tokens), loaded once
    per test session: the packaged params were learnt on these vectors."""
    settings = Settings()
    return load_embedder(
        max_seq_length=settings.embedder_max_seq_length,
        runtime=settings.embedder_runtime,
        onnx_dir=settings.embedder_onnx_dir,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def port() -> Iterator[int]:
    yield free_port()


def shared_dataset(name: str) -> Path:
    path = SHARED_DATA / name / "pairs.jsonl.gz"
    if not path.exists():
        pytest.skip(f"{path} is absent (the shared data is optional)")
    return path
