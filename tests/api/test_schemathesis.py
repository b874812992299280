"""Schemathesis fuzzes the running server from its own OpenAPI: every operation, every phase
(examples, coverage, fuzzing, stateful), a fixed seed and a bounded number of cases each.

It fails on any 5xx, any status a route does not document, and any response body that does
not match the documented schema."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from service.testing.server_process import served
from tests.helpers import api_keys

pytestmark = pytest.mark.slow  # a real server and ~1,000 requests: the full tier only

CHECKS = "not_a_server_error,status_code_conformance,response_schema_conformance"


def test_the_openapi_holds_under_fuzzing(tmp_path: Path) -> None:
    keys = api_keys({"name": "fuzz", "secret": "fuzz-key", "scopes": ["score", "users", "admin"]})
    st = Path(sys.executable).parent / "st"
    with served({"PGENRM_API_KEYS": keys, "PGENRM_GROUP_WAIT_S": "1"}) as url:
        run = subprocess.run(
            [
                str(st),
                "run",
                f"{url}/openapi.json",
                "--header=Authorization: Bearer fuzz-key",
                f"--checks={CHECKS}",
                "--max-examples=15",
                "--seed=1",
                "--workers=1",
                "--generation-database=none",
                "--request-timeout=60",
                "--no-color",
            ],
            cwd=tmp_path,  # its report directory, if any, stays out of the repo
            capture_output=True,
            text=True,
            timeout=600,
        )
    summary = run.stdout[-6000:]
    assert run.returncode == 0, summary
    selected = re.search(r"Selected: (\d+)/(\d+)", summary)
    tested = re.search(r"Tested: (\d+)", summary)
    assert selected and tested, summary
    assert int(tested.group(1)) == int(selected.group(2)) >= 10  # every operation was fuzzed
    assert "Failures:" not in summary and "Errors:" not in summary, summary
