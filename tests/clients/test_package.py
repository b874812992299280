"""The client package stands alone: httpx is its only dependency, and importing it (adapters
included) loads neither the server nor torch, numpy or any trainer."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import REPO

CLIENT = REPO / "clients" / "python"
PACKAGE = CLIENT / "pgenrm_client"
MODULES = ["pgenrm_client", *(f"pgenrm_client.{p.stem}" for p in sorted(PACKAGE.glob("[!_]*.py")))]


def test_httpx_is_the_only_dependency() -> None:
    project = tomllib.loads((CLIENT / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == ["httpx>=0.27"]
    assert project.get("optional-dependencies", {}) == {}
    assert (PACKAGE / "py.typed").exists()


def test_imports_load_no_server_torch_numpy_or_trainer(tmp_path: Path) -> None:
    assert {"pgenrm_client.trl", "pgenrm_client.verl", "pgenrm_client.openrlhf"} <= set(MODULES)
    code = (
        "import importlib, json, sys\n"
        f"for name in {MODULES!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    loaded = {name.split(".")[0] for name in json.loads(out.stdout)}
    forbidden = {"service", "torch", "numpy", "trl", "transformers", "verl", "openrlhf", "slime"}
    assert loaded & forbidden == set()
    assert {"httpx", "pgenrm_client"} <= loaded


def _type_checking_only(tree: ast.AST) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks (never run)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        test = node.test if isinstance(node, ast.If) else None
        if isinstance(node, ast.If) and isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
            inside |= {id(child) for part in node.body for child in ast.walk(part)}
    return inside


def _runtime_imports(tree: ast.AST) -> set[str]:
    skip = _type_checking_only(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_module_imports_only_the_standard_library_and_httpx() -> None:
    allowed = set(sys.stdlib_module_names) | {"httpx", "pgenrm_client"}
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        extra = _runtime_imports(tree) - allowed
        assert extra == set(), f"{path.name} imports {sorted(extra)} at run time"
        relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
        assert relative == [], (
            f"{path.name}: trainers load adapter files by path; import absolutely"
        )
