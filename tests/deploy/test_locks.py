"""The lock files in requirements/ (written by scripts/lock, installed by scripts/install and
the Dockerfile): fully pinned and hashed, torch on its CPU pin, in step with the pyproject files,
and what this test run itself has installed."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import REPO

LOCKS = REPO / "requirements"
NAMES = ("torch", "dev", "server", "verl")
HASH = re.compile(r"^\s+--hash=sha256:[0-9a-f]{64}( \\)?$")


@dataclass(frozen=True)
class Pin:
    requirement: Requirement
    version: Version
    hashes: frozenset[str]


def read_lock(name: str) -> dict[str, Pin]:
    """Canonical name -> pin; fails on anything `pip install --require-hashes` would not take."""
    pins: dict[str, Pin] = {}
    lines = (LOCKS / f"{name}.lock").read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip() or line.lstrip().startswith("#") or HASH.match(line):
            continue
        assert line.endswith(" \\"), f"{name}.lock:{i + 1}: {line!r} has no hashes"
        requirement = Requirement(line.removesuffix(" \\"))
        (spec,) = requirement.specifier
        assert spec.operator == "==" and "*" not in spec.version, line
        hashes = []
        for follow in lines[i + 1 :]:
            if not HASH.match(follow):
                break
            hashes.append(follow.split("sha256:")[1].removesuffix(" \\"))
        assert hashes and not lines[i + len(hashes)].endswith("\\"), line
        pins[canonicalize_name(requirement.name)] = Pin(
            requirement, Version(spec.version), frozenset(hashes)
        )
    assert pins, f"{name}.lock is empty"
    return pins


def applies(requirement: Requirement, extras: tuple[str, ...] = ("",)) -> bool:
    marker = requirement.marker
    return marker is None or any(marker.evaluate({"extra": extra}) for extra in extras)


def declared(pyproject: Path, *extras: str) -> list[Requirement]:
    project = tomllib.loads(pyproject.read_text())["project"]
    texts = [*project["dependencies"]]
    for extra in extras:
        texts += project["optional-dependencies"][extra]
    return [Requirement(text) for text in texts]


SERVER = REPO / "pyproject.toml"
CLIENT = REPO / "clients" / "python" / "pyproject.toml"
VERL_IN = [
    Requirement(line)
    for line in (LOCKS / "verl.in").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]
WANTED = {
    "dev": [*declared(SERVER, "dev", "trainers"), *declared(CLIENT)],
    "server": declared(SERVER),
    "verl": [*VERL_IN, *declared(CLIENT)],
}


@pytest.mark.parametrize("name", NAMES)
def test_lock_is_fully_pinned_with_hashes_and_cpu_torch(name: str) -> None:
    pins = read_lock(name)
    constraint = re.search(r"^torch==(\S+)$", (REPO / "constraints.txt").read_text(), re.M)
    assert constraint is not None
    assert pins["torch"].version == Version(constraint[1])
    assert str(pins["torch"].version).endswith("+cpu")
    assert pins["torch"].hashes == read_lock("torch")["torch"].hashes
    cuda = [n for n in pins if n.startswith("nvidia-") or n == "triton"]
    assert cuda == [], f"{name}.lock has CUDA packages"


@pytest.mark.parametrize("name", sorted(WANTED))
def test_lock_satisfies_the_declared_dependencies(name: str) -> None:
    """A dependency added to or tightened in a pyproject file needs ./scripts/lock."""
    pins = read_lock(name)
    unmet = [
        str(requirement)
        for requirement in WANTED[name]
        if applies(requirement)
        and (
            (pin := pins.get(canonicalize_name(requirement.name))) is None
            or not requirement.specifier.contains(pin.version, prereleases=True)
        )
    ]
    assert unmet == [], f"requirements/{name}.lock is stale: run ./scripts/lock"


def test_the_image_runs_the_versions_the_suite_ran_with() -> None:
    dev, server = read_lock("dev"), read_lock("server")
    assert set(server) <= set(dev)
    assert {n: p.version for n, p in server.items()} == {n: dev[n].version for n in server}


def test_this_environment_has_the_locked_versions() -> None:
    """The suite runs with exactly dev.lock's versions (what scripts/install puts in .venv)."""
    wrong = {}
    for name, pin in read_lock("dev").items():
        if not applies(pin.requirement):
            continue
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            installed = None
        if installed != pin.version:
            wrong[name] = f"{installed} installed, {pin.version} locked"
    assert wrong == {}, "run ./scripts/install (or ./scripts/lock to move the locked versions)"
