"""/v1/users/{user_id}: store, read, extend and forget a user's history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from fastapi.responses import JSONResponse

from service.api._idempotent import IdempotencyKey, once
from service.api._json_route import JSONBodyRoute
from service.api.deps import IdempotencyDep, UserServiceDep
from service.api.errors import responses as errors
from service.api.schemas.users import UserDeleted, UserInfo, UserPatch, UserWrite

router = APIRouter(prefix="/v1/users", route_class=JSONBodyRoute, tags=["users"])

UserIdPath = Annotated[str, Path(min_length=1, max_length=256, description="The user's id.")]
_ERRORS = errors(
    {
        400: "Body is not JSON",
        404: "No such user",
        413: "Body too large",
        422: "Invalid request (the envelope names the field)",
        503: "The user store is unavailable (see Retry-After)",
    }
)


@router.put("/{user_id}", response_model=UserInfo, responses=_ERRORS)
async def put_user(user_id: UserIdPath, body: UserWrite, service: UserServiceDep) -> UserInfo:
    """Create or replace the user's history and attributes."""
    return await service.put(user_id, body)


@router.get("/{user_id}", response_model=UserInfo, responses=_ERRORS)
async def get_user(user_id: UserIdPath, service: UserServiceDep) -> UserInfo:
    """The stored user, history included."""
    return await service.get(user_id)


@router.patch("/{user_id}", response_model=UserInfo, responses=_ERRORS)
async def patch_user(
    user_id: UserIdPath,
    body: UserPatch,
    service: UserServiceDep,
    idempotency: IdempotencyDep,
    idempotency_key: IdempotencyKey = None,
) -> UserInfo | JSONResponse:
    """Append history pairs and merge attributes. An append is not idempotent by itself: send
    an `Idempotency-Key` to retry one safely."""
    route = f"users-patch\x1f{user_id}"
    return await once(
        idempotency, idempotency_key, route, body, lambda: service.patch(user_id, body)
    )


@router.delete("/{user_id}", response_model=UserDeleted, responses=_ERRORS)
async def delete_user(user_id: UserIdPath, service: UserServiceDep) -> UserDeleted:
    """Forget the user: history, attributes, cached personas and profile embeddings."""
    return await service.delete(user_id)
