"""API keys: who may call, for which tenant, with which scopes and limits.

Keys come from a JSON file (`PGENRM_API_KEYS_FILE`) or the same JSON in `PGENRM_API_KEYS`:

    {"keys": [{"name": "trainer-a", "tenant": "team-a", "sha256": "<hex>",
               "scopes": ["score", "users"],
               "limits": {"requests_per_s": 50, "cost_per_minute": 200000,
                          "max_concurrent_expensive": 2}}]}

Only the SHA-256 of each secret is stored, so the file can be read by anyone who deploys the
service without handing out the secrets (`pgenrm keys new` makes a secret and its entry).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import secrets
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

Scope = Literal["score", "users", "compare", "admin"]
SCOPES: tuple[Scope, ...] = ("score", "users", "compare", "admin")
DEFAULT_TENANT = "default"
_SECRET_PREFIX = "pgk_"


class KeyLimits(BaseModel):
    """Per-key limits; a field left out takes the server's default (PGENRM_DEFAULT_*)."""

    model_config = ConfigDict(extra="forbid")

    requests_per_s: float | None = Field(None, gt=0, description="Requests per second.")
    cost_per_minute: int | None = Field(
        None, ge=1, description="Scoring cost units per minute (see `service.api._cost`)."
    )
    max_concurrent_expensive: int | None = Field(
        None, ge=1, description="Expensive scoring calls in flight at once, per worker process."
    )


class ApiKey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    tenant: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the secret, hex.")
    scopes: frozenset[Scope] = Field(min_length=1)
    limits: KeyLimits = Field(default_factory=KeyLimits)


class KeyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[ApiKey]

    @field_validator("keys")
    @classmethod
    def _unique(cls, keys: list[ApiKey]) -> list[ApiKey]:
        for attr in ("name", "sha256"):
            values = [getattr(k, attr) for k in keys]
            duplicate = next((v for v in values if values.count(v) > 1), None)
            if duplicate is not None:
                shown = duplicate if attr == "name" else f"{duplicate[:8]}..."
                raise ValueError(f"two keys have the same {attr} ({shown})")
        return keys


class KeyConfigError(ValueError):
    """The keys file or variable cannot be used; the message says where and why."""


def namespaced(tenant: str, user_id: str) -> str:
    """The id a tenant's user is stored and cached under: the default tenant keeps the bare id
    (what a server without keys always stored); user ids cannot hold the control separator."""
    return user_id if tenant == DEFAULT_TENANT else f"{tenant}\x1f{user_id}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """A fresh secret: 32 random bytes, URL-safe, with a recognisable prefix for secret scanners."""
    return _SECRET_PREFIX + secrets.token_urlsafe(32)


class Keyring:
    """The configured keys, looked up by the digest of a presented secret."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self._by_digest = {k.sha256: k for k in keys}
        self.keys = tuple(keys)

    @property
    def empty(self) -> bool:
        return not self._by_digest

    @property
    def has_admin(self) -> bool:
        return any("admin" in k.scopes for k in self.keys)

    def find(self, secret: str) -> ApiKey | None:
        # A dict lookup on a SHA-256 digest: its timing says nothing useful about the secret.
        return self._by_digest.get(digest(secret))


def load_keys(file: Path | None, inline: str | None) -> Keyring:
    """The keys from the file and/or the inline JSON (both may be given; names must differ)."""
    keys: list[ApiKey] = []
    sources: list[tuple[str, str]] = []
    if file is not None:
        try:
            sources.append(("PGENRM_API_KEYS_FILE", file.read_text()))
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise KeyConfigError(f"PGENRM_API_KEYS_FILE cannot be read: {reason}") from error
    if inline:
        sources.append(("PGENRM_API_KEYS", inline))
    for where, text in sources:
        try:
            keys += KeyFile.model_validate(json.loads(text)).keys
        except json.JSONDecodeError as error:
            raise KeyConfigError(f"{where} is not valid JSON: {error.msg}") from error
        except ValidationError as error:
            raise KeyConfigError(f"{where} is not a valid keys document:\n{error}") from error
    try:
        KeyFile(keys=keys)  # unique names and secrets across both sources
    except ValidationError as error:
        raise KeyConfigError(f"the configured keys conflict:\n{error}") from error
    return Keyring(keys)
