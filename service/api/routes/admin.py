"""Operator endpoints: hot reload of the prototype artefact."""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Header

from prototypes.artifact import ArtifactError
from service.api.deps import StateDep
from service.core.errors import Conflict, InvalidRequest, Unauthorized

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post("/prototypes/reload")
async def reload_prototypes(
    state: StateDep, authorization: Annotated[str | None, Header()] = None
) -> dict[str, Any]:
    """Swap in the artefact version named by LATEST, without dropping requests."""
    token = state.settings.admin_token
    if token is not None:
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not secrets.compare_digest(given, token.get_secret_value()):
            raise Unauthorized("admin endpoints need `Authorization: Bearer <PGENRM_ADMIN_TOKEN>`")
    if state.prototypes is None:
        raise Conflict("no prototype artefact is loaded (set PGENRM_PROTOTYPES_DIR)")
    try:
        previous, version = await state.prototypes.reload()
    except ArtifactError as error:
        current = state.prototypes.current.version if state.prototypes.current else None
        raise InvalidRequest(f"reload failed, still serving {current}: {error}") from error
    return {"previous": previous, "version": version, "changed": previous != version}
