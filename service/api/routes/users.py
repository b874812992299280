"""/v1/users/{user_id}: store, read, extend and forget a user's history (in the key's tenant)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from service.api._idempotent import IdempotencyKey, once
from service.api._json_route import JSONBodyRoute
from service.api.deps import IdempotencyDep, UsersCaller, UserServiceDep
from service.api.errors import KEYED
from service.api.errors import responses as errors
from service.api.schemas.common import USER_ID_PATTERN
from service.api.schemas.users import UserDeleted, UserInfo, UserPatch, UserWrite

router = APIRouter(prefix="/v1/users", route_class=JSONBodyRoute, tags=["users"])

UserIdPath = Annotated[
    str,
    Path(min_length=1, max_length=256, pattern=USER_ID_PATTERN, description="The user's id."),
]
_READ = {
    **KEYED,
    404: "No such user",
    422: "Invalid request (the envelope names the field)",
    503: "The user store is unavailable (see Retry-After)",
}
_WRITE = errors(
    {
        **_READ,
        400: "Body is not JSON",
        413: "Body too large",
        415: "Body is not `application/json`",
    }
)


@router.put("/{user_id}", response_model=UserInfo, responses=_WRITE)
async def put_user(
    user_id: UserIdPath, body: UserWrite, caller: UsersCaller, service: UserServiceDep
) -> UserInfo:
    """Create or replace the user's history and attributes."""
    return await service.put(user_id, body, caller.tenant)


@router.get("/{user_id}", response_model=UserInfo, responses=errors(_READ))
async def get_user(user_id: UserIdPath, caller: UsersCaller, service: UserServiceDep) -> UserInfo:
    """The stored user, history included."""
    return await service.get(user_id, caller.tenant)


@router.patch("/{user_id}", response_model=UserInfo, responses=_WRITE)
async def patch_user(
    user_id: UserIdPath,
    body: UserPatch,
    caller: UsersCaller,
    service: UserServiceDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> UserInfo | JSONResponse:
    """Append history pairs and merge attributes. An append is not idempotent by itself: send
    an `Idempotency-Key` to retry one safely."""
    route = f"{caller.tenant}\x1fusers-patch\x1f{user_id}"
    return await once(
        idempotency,
        idempotency_key,
        route,
        body,
        lambda: service.patch(user_id, body, caller.tenant),
    )


@router.delete("/{user_id}", response_model=UserDeleted, responses=errors(_READ))
async def delete_user(
    user_id: UserIdPath, caller: UsersCaller, service: UserServiceDep
) -> UserDeleted:
    """Forget the user: history, attributes, cached personas and profile embeddings."""
    return await service.delete(user_id, caller.tenant)
