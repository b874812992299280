"""The artefact is readable by the serving user, whoever ran the learn job and with what umask.

The image serves as uid 10001; a learn Job (or a person) writes the artefact as another user.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from prototypes.artifact import LATEST, read_artifact
from tests.prototypes.tiny import write_tiny_artefact

IMAGE_UID = 10001  # the Dockerfile's USER


@pytest.fixture
def strict_umask() -> Iterator[None]:
    """The tightest umask a learn job could run under."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def test_every_version_file_and_directory_is_world_readable(
    tmp_path: Path, strict_umask: None
) -> None:
    root = tmp_path / "protos"
    version = write_tiny_artefact(root)
    for path in (root, root / version):
        assert stat.S_IMODE(path.stat().st_mode) == 0o755, path.name
    files = [root / LATEST, *(root / version).iterdir()]
    assert len(files) > 2
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to the image's uid needs root")
def test_the_image_user_loads_an_artefact_written_by_root(strict_umask: None) -> None:
    """What a gateway pod does with the learn Job's volume: load LATEST as uid 10001 (in a
    forked child, so the loader is this checkout's and no interpreter under /root is needed)."""
    with tempfile.TemporaryDirectory() as mount:
        Path(mount).chmod(0o755)  # the volume's mount point; pytest's tmp_path is 0700
        root = Path(mount) / "protos"
        version = write_tiny_artefact(root)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through the pipe
            os.close(read)
            try:
                os.setgroups([])
                os.setgid(IMAGE_UID)
                os.setuid(IMAGE_UID)
                answer = read_artifact(root).version
            except BaseException as error:
                answer = f"{type(error).__name__}: {error}"
            os.write(write, answer.encode())
            os._exit(0)
        os.close(write)
        with os.fdopen(read) as pipe:
            answer = pipe.read()
        os.waitpid(pid, 0)
        assert answer == version
