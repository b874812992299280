"""The user store seam: what a stored user is, and the operations on one."""

from __future__ import annotations

import json
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from service.core.inputs import PreferencePair

Attribute = str | int | float | bool
Attributes = dict[str, Attribute]


class UserStoreError(RuntimeError):
    """The store could not answer (its backing file or server failed)."""


@dataclass(frozen=True)
class StoredUser:
    user_id: str
    history: tuple[PreferencePair, ...]
    attributes: Attributes = field(default_factory=dict)
    version: int = 1  # +1 on every write; a score names the version it used
    updated_at: float = 0.0
    dropped: int = 0  # oldest pairs dropped by this write to stay within the cap

    def to_json(self) -> str:
        return json.dumps(
            {
                "history": [p.to_json() for p in self.history],
                "attributes": self.attributes,
                "version": self.version,
                "updated_at": self.updated_at,
            }
        )

    @classmethod
    def from_json(cls, user_id: str, raw: str | bytes) -> StoredUser:
        data: dict[str, Any] = json.loads(raw)
        return cls(
            user_id=user_id,
            history=tuple(PreferencePair.from_json(p) for p in data["history"]),
            attributes=dict(data.get("attributes") or {}),
            version=int(data["version"]),
            updated_at=float(data.get("updated_at") or 0.0),
        )


def written(
    user_id: str,
    previous: StoredUser | None,
    history: Sequence[PreferencePair],
    attributes: Mapping[str, Attribute | None],
    max_pairs: int,
) -> StoredUser:
    """The record after a write: `history` and `attributes` already merged by the caller's rule;
    None attribute values delete the attribute; the most recent `max_pairs` pairs are kept."""
    kept = tuple(history)[-max_pairs:] if max_pairs else ()
    return StoredUser(
        user_id=user_id,
        history=kept,
        attributes={k: v for k, v in attributes.items() if v is not None},
        version=(previous.version + 1) if previous is not None else 1,
        updated_at=time.time(),
        dropped=len(history) - len(kept),
    )


class UserStore(ABC):
    """Per-user records. Every write is one atomic read-modify-write (`_update`), so concurrent
    writers (other worker processes, other replicas) never lose one another's pairs."""

    name: str

    def __init__(self, max_pairs: int) -> None:
        self.max_pairs = max_pairs

    @abstractmethod
    async def get(self, user_id: str) -> StoredUser | None: ...

    @abstractmethod
    async def _update(
        self, user_id: str, change: Callable[[StoredUser | None], StoredUser | None]
    ) -> StoredUser | None:
        """Store `change(current record)` atomically (nothing when it gives None); return it."""

    async def put(
        self, user_id: str, history: Sequence[PreferencePair], attributes: Mapping[str, Attribute]
    ) -> StoredUser:
        """Create or replace the user."""
        record = await self._update(
            user_id, lambda old: written(user_id, old, history, attributes, self.max_pairs)
        )
        assert record is not None
        return record

    async def append(
        self,
        user_id: str,
        pairs: Sequence[PreferencePair],
        attributes: Mapping[str, Attribute | None],
    ) -> StoredUser | None:
        """Add pairs (the oldest beyond the cap are dropped) and merge attributes (None removes
        one); None when the user does not exist."""

        def change(old: StoredUser | None) -> StoredUser | None:
            if old is None:
                return None
            merged = {**old.attributes, **attributes}
            return written(user_id, old, (*old.history, *pairs), merged, self.max_pairs)

        return await self._update(user_id, change)

    @abstractmethod
    async def delete(self, user_id: str) -> bool:
        """Forget the user; False when there was nothing to forget."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release files and connections."""
