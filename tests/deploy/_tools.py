"""Command-line tools the deployment checks run: skipped when absent, failed instead when the
test command requires them (scripts/test sets the PGENRM_REQUIRE_* flags)."""

from __future__ import annotations

import os
import shutil

import pytest


def required_tool(name: str, package: str, flag: str) -> str:
    """The path of `name` (Debian package `package`), or skip, or fail when `flag` is 1."""
    binary = shutil.which(name)
    if binary is None:
        message = f"{name} is absent (apt-get install -y {package})"
        if os.environ.get(flag) == "1":
            pytest.fail(message)
        pytest.skip(message)
    return binary
