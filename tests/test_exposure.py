"""No keys means loopback only: a wider address needs keys or an explicit, logged PGENRM_INSECURE."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.cli import main
from service.core.config import Settings
from service.core.embedder import Embedder
from service.core.keys import is_loopback
from tests.helpers import api_keys


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", *argv])
    assert exit_.value.code == 2
    return capsys.readouterr().err


def test_no_keys_beyond_loopback_refuses_to_start(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGENRM_API_KEYS", raising=False)
    monkeypatch.delenv("PGENRM_API_KEYS_FILE", raising=False)
    message = refused(capsys, "--host", "0.0.0.0")
    assert "refusing to listen on 0.0.0.0 with no API keys" in message
    assert "PGENRM_INSECURE" in message and "pgenrm keys new" in message


def test_unusable_keys_refuse_to_start_and_say_why(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PGENRM_API_KEYS", '{"keys": [{"name": "a"}]}')
    assert "PGENRM_API_KEYS is not a valid keys document" in refused(capsys)
    monkeypatch.setenv("PGENRM_API_KEYS", "{not json")
    assert "PGENRM_API_KEYS is not valid JSON" in refused(capsys)
    monkeypatch.delenv("PGENRM_API_KEYS")
    monkeypatch.setenv("PGENRM_API_KEYS_FILE", str(tmp_path / "missing.json"))
    message = refused(capsys)
    assert "PGENRM_API_KEYS_FILE cannot be read" in message
    duplicate = api_keys({"name": "a", "secret": "s"}, {"name": "b", "secret": "s"})
    monkeypatch.setenv("PGENRM_API_KEYS_FILE", str(tmp_path / "keys.json"))
    (tmp_path / "keys.json").write_text(duplicate)
    assert "same sha256" in refused(capsys)


def test_insecure_serves_beyond_loopback_and_logs_it(
    embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(host="0.0.0.0", insecure=True)
    app = create_app(settings, backend=EmbeddedBackend(lambda: embedder, load_params()))
    with caplog.at_level(logging.WARNING, logger="pgenrm"), TestClient(app):
        pass
    assert any("INSECURE: no API keys" in r.getMessage() for r in caplog.records)


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "::1", "localhost", "127.0.0.2"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "10.0.0.1", "example.org"]))
