"""One real `pgenrm serve` for every client test module that needs one (started on first use)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.testing.server_process import served

# Few samples per score keep the calls quick; groups close fast when a member is missing.
SERVER_ENV = {"PGENRM_DEFAULT_IND": "2", "PGENRM_GROUP_WAIT_S": "10"}


@pytest.fixture(scope="package")
def server() -> Iterator[str]:
    with served(SERVER_ENV) as url:
        yield url
