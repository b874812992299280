"""The `/v1/users/{user_id}` serving object: stored histories and attributes.

Deleting a user forgets everything derived from their history too: the cached personas and
profile embeddings (in Redis, or this process's in-memory store) and this process's profiles.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

from service.api.schemas.common import HistoryPair, Message
from service.api.schemas.users import UserDeleted, UserInfo, UserPatch, UserWrite
from service.api.serving import to_pair
from service.core.config import Settings
from service.core.errors import InvalidRequest, NotFound, Unavailable
from service.core.inputs import PreferencePair
from service.core.keys import DEFAULT_TENANT, namespaced
from service.engine.cache import Caches
from service.engine.scorer import ScoringEngine
from service.users.base import Attribute, StoredUser, UserStore, UserStoreError

_MAX_ATTRIBUTE_CHARS = 256
T = TypeVar("T")


def _unknown(user_id: str) -> NotFound:
    return NotFound(f"no stored user {user_id!r}", field="user_id")


def _wire_pair(pair: PreferencePair) -> HistoryPair:
    context = [Message(role=m.role, content=m.content) for m in pair.context]
    return HistoryPair(
        context=context, chosen=pair.chosen, rejected=pair.rejected, feedback=pair.feedback
    )


def _info(user: StoredUser, user_id: str, with_history: bool = False) -> UserInfo:
    """The stored user as the caller named it (never its tenant's namespace)."""
    return UserInfo(
        user_id=user_id,
        version=user.version,
        pairs=len(user.history),
        attributes=user.attributes,
        updated_at=round(user.updated_at, 3),
        dropped=user.dropped,
        history=[_wire_pair(p) for p in user.history] if with_history else None,
    )


class UserService:
    def __init__(
        self, store: UserStore, caches: Caches, engine: ScoringEngine, settings: Settings
    ) -> None:
        self.store = store
        self.caches = caches
        self.engine = engine
        self.settings = settings

    def _check(
        self, user_id: str, pairs: list[HistoryPair], attributes: dict[str, Attribute | None]
    ) -> None:
        s = self.settings
        if not 1 <= len(user_id) <= 256:
            raise InvalidRequest("a user id has 1 to 256 characters", field="user_id")
        if len(attributes) > s.max_attributes:
            raise InvalidRequest(
                f"{len(attributes)} attributes exceed the limit of {s.max_attributes} "
                "(PGENRM_MAX_ATTRIBUTES)",
                field="attributes",
            )
        for name, value in attributes.items():
            if len(name) > 64 or (isinstance(value, str) and len(value) > _MAX_ATTRIBUTE_CHARS):
                raise InvalidRequest(
                    f"attribute {name[:64]!r}: names have at most 64 characters and string "
                    f"values at most {_MAX_ATTRIBUTE_CHARS}",
                    field=f"attributes.{name[:64]}",
                )
        for i, pair in enumerate(pairs):
            texts = [pair.chosen, pair.rejected, pair.prompt or "", pair.feedback or ""]
            texts += [m.content for m in pair.context or []]
            if max(len(t) for t in texts) > s.max_text_chars:
                raise InvalidRequest(
                    f"a text of pair {i} exceeds {s.max_text_chars:,} characters "
                    "(PGENRM_MAX_TEXT_CHARS)",
                    field=f"history[{i}]",
                )

    async def put(self, user_id: str, body: UserWrite, tenant: str = DEFAULT_TENANT) -> UserInfo:
        self._check(user_id, body.history, dict(body.attributes))
        if len(body.history) > self.settings.max_stored_pairs:
            raise InvalidRequest(
                f"{len(body.history)} pairs exceed the limit of {self.settings.max_stored_pairs} "
                "(PGENRM_MAX_STORED_PAIRS)",
                field="history",
            )
        pairs = [to_pair(h) for h in body.history]
        stored = namespaced(tenant, user_id)
        return _info(await self._call(self.store.put(stored, pairs, body.attributes)), user_id)

    async def get(self, user_id: str, tenant: str = DEFAULT_TENANT) -> UserInfo:
        user = await self._call(self.store.get(namespaced(tenant, user_id)))
        if user is None:
            raise _unknown(user_id)
        return _info(user, user_id, with_history=True)

    async def patch(self, user_id: str, body: UserPatch, tenant: str = DEFAULT_TENANT) -> UserInfo:
        self._check(user_id, body.append, dict(body.attributes))
        pairs = [to_pair(h) for h in body.append]
        stored = namespaced(tenant, user_id)
        user = await self._call(self.store.append(stored, pairs, body.attributes))
        if user is None:
            raise _unknown(user_id)
        if len(user.attributes) > self.settings.max_attributes:
            raise InvalidRequest("the merged attributes exceed PGENRM_MAX_ATTRIBUTES")
        return _info(user, user_id)

    async def delete(self, user_id: str, tenant: str = DEFAULT_TENANT) -> UserDeleted:
        stored = namespaced(tenant, user_id)
        existed = await self._call(self.store.delete(stored))
        dropped = await self.caches.forget(stored)
        self.engine.forget(stored)
        if not existed:
            raise _unknown(user_id)
        return UserDeleted(user_id=user_id, cached_entries_dropped=dropped)

    @staticmethod
    async def _call(work: Awaitable[T]) -> T:
        try:
            return await work
        except UserStoreError as error:
            raise Unavailable(f"the user store failed: {error}", retry_after=2) from error
