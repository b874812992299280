"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.api.deps import StateDep
from service.core.errors import Unavailable

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Alive: the process answers. Says nothing about models."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(state: StateDep) -> dict[str, Any]:
    """200 once the embedder and the backend are loaded: "ready", or "degraded" while the
    fallback answers for workers that are down (even since start-up). Anyone may call it, so
    it names no filesystem path: a failed start-up says what kind of error, the log says more."""
    engine = state.engine
    ready = engine.readiness()
    if state.startup_error is not None:
        raise Unavailable(f"start-up failed: {state.startup_error}", retry_after=30)
    if not ready.loaded:
        raise Unavailable("loading the embedder and backend", retry_after=5)
    if state.settings.prototypes_dir is not None and state.prototypes is None:
        raise Unavailable("loading the prototype artefact", retry_after=5)
    if not ready.available and ready.fallback is None:
        raise Unavailable(f"every {ready.backend} worker is down", retry_after=ready.retry_after)
    return {
        "status": "ready" if ready.available else "degraded",
        "backend": ready.backend,
        "model": ready.model,
        "fallback": ready.fallback,
        "prototypes_version": engine.prototypes_version,
        **ready.details,
    }
