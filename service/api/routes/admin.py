"""Operator endpoints (keys with the `admin` scope): hot reload of the prototype artefact."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from prototypes.artifact import ArtifactError
from service.api.deps import AdminCaller, StateDep
from service.api.errors import KEYED, responses
from service.core.errors import Conflict, InvalidRequest

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post(
    "/prototypes/reload",
    responses=responses(
        {
            **KEYED,
            403: "The key lacks the `admin` scope, or no key has it (the admin API is closed)",
            409: "No prototype artefact is loaded (PGENRM_PROTOTYPES_DIR is unset)",
            422: "The version LATEST names cannot be loaded; the current one is kept",
        }
    ),
)
async def reload_prototypes(state: StateDep, _: AdminCaller) -> dict[str, Any]:
    """Swap in the artefact version named by LATEST, without dropping requests."""
    if state.prototypes is None:
        raise Conflict("no prototype artefact is loaded (set PGENRM_PROTOTYPES_DIR)")
    try:
        previous, version = await state.prototypes.reload()
    except ArtifactError as error:
        current = state.prototypes.current.version if state.prototypes.current else None
        raise InvalidRequest(f"reload failed, still serving {current}: {error}") from error
    return {"previous": previous, "version": version, "changed": previous != version}
