"""Typed accessors for what the app built at start-up (no globals: all of it lives on app.state)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.auth import Gatekeeper, Principal
from service.api.batch import BatchService
from service.api.comparing import CompareService
from service.api.critiquing import CritiqueService
from service.api.openrlhf import OpenRLHFService
from service.api.serving import ScoreService
from service.api.state import AppState
from service.api.users import UserService
from service.coordination.idempotency import Idempotency
from service.core.config import Settings
from service.core.keys import Scope
from service.core.logs import bind


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.pgenrm
    return state


# The dependencies are coroutines on purpose: FastAPI runs a plain `def` dependency on its
# thread pool, a thread hand-off per dependency per request for one attribute read.
async def get_state(request: Request) -> AppState:
    return app_state(request)


async def get_settings(request: Request) -> Settings:
    return app_state(request).settings


async def get_score_service(request: Request) -> ScoreService:
    return app_state(request).score_service


async def get_user_service(request: Request) -> UserService:
    return app_state(request).user_service


async def get_batch_service(request: Request) -> BatchService:
    return app_state(request).batch_service


async def get_compare_service(request: Request) -> CompareService:
    return app_state(request).compare_service


async def get_critique_service(request: Request) -> CritiqueService:
    return app_state(request).critique_service


async def get_openrlhf_service(request: Request) -> OpenRLHFService:
    return app_state(request).openrlhf_service


async def get_idempotency(request: Request) -> Idempotency:
    return app_state(request).idempotency


async def get_gatekeeper(request: Request) -> Gatekeeper:
    return app_state(request).gatekeeper


# Declares the bearer scheme in the OpenAPI (the docs' "Authorize" button); a missing or
# non-bearer header reaches the gatekeeper as None, which answers 401 in the envelope.
_bearer = HTTPBearer(auto_error=False, description="An API key (`pgenrm keys new`).")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _caller(scope: Scope) -> Callable[[Request, Credentials], Awaitable[Principal]]:
    async def caller(request: Request, credentials: Credentials) -> Principal:
        secret = credentials.credentials if credentials is not None else None
        caller = await app_state(request).gatekeeper.authorize(secret, scope)
        bind(key=caller.name, tenant=caller.tenant)  # on the request's log lines (never the secret)
        return caller

    return caller


StateDep = Annotated[AppState, Depends(get_state)]
GatekeeperDep = Annotated[Gatekeeper, Depends(get_gatekeeper)]
ScoreCaller = Annotated[Principal, Depends(_caller("score"))]
UsersCaller = Annotated[Principal, Depends(_caller("users"))]
CompareCaller = Annotated[Principal, Depends(_caller("compare"))]
AdminCaller = Annotated[Principal, Depends(_caller("admin"))]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ScoreServiceDep = Annotated[ScoreService, Depends(get_score_service)]
UserServiceDep = Annotated[UserService, Depends(get_user_service)]
BatchServiceDep = Annotated[BatchService, Depends(get_batch_service)]
CompareServiceDep = Annotated[CompareService, Depends(get_compare_service)]
CritiqueServiceDep = Annotated[CritiqueService, Depends(get_critique_service)]
OpenRLHFServiceDep = Annotated[OpenRLHFService, Depends(get_openrlhf_service)]
IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
