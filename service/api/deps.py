"""Typed accessors for what the app built at start-up (no globals: all of it lives on app.state)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.auth import Gatekeeper, Principal
from service.api.batch import BatchService
from service.api.openrlhf import OpenRLHFService
from service.api.serving import ScoreService
from service.api.state import AppState
from service.api.users import UserService
from service.coordination.idempotency import Idempotency
from service.core.config import Settings
from service.core.keys import Scope
from service.core.logs import bind


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.pgenrm
    return state


def get_settings(request: Request) -> Settings:
    return get_state(request).settings


def get_score_service(request: Request) -> ScoreService:
    return get_state(request).score_service


def get_user_service(request: Request) -> UserService:
    return get_state(request).user_service


def get_batch_service(request: Request) -> BatchService:
    return get_state(request).batch_service


def get_openrlhf_service(request: Request) -> OpenRLHFService:
    return get_state(request).openrlhf_service


def get_idempotency(request: Request) -> Idempotency:
    return get_state(request).idempotency


def get_gatekeeper(request: Request) -> Gatekeeper:
    return get_state(request).gatekeeper


# Declares the bearer scheme in the OpenAPI (the docs' "Authorize" button); a missing or
# non-bearer header reaches the gatekeeper as None, which answers 401 in the envelope.
_bearer = HTTPBearer(auto_error=False, description="An API key (`pgenrm keys new`).")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _caller(scope: Scope) -> Callable[[Request, Credentials], Awaitable[Principal]]:
    async def caller(request: Request, credentials: Credentials) -> Principal:
        secret = credentials.credentials if credentials is not None else None
        caller = await get_gatekeeper(request).authorize(secret, scope)
        bind(key=caller.name, tenant=caller.tenant)  # on the request's log lines (never the secret)
        return caller

    return caller


StateDep = Annotated[AppState, Depends(get_state)]
GatekeeperDep = Annotated[Gatekeeper, Depends(get_gatekeeper)]
ScoreCaller = Annotated[Principal, Depends(_caller("score"))]
UsersCaller = Annotated[Principal, Depends(_caller("users"))]
AdminCaller = Annotated[Principal, Depends(_caller("admin"))]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ScoreServiceDep = Annotated[ScoreService, Depends(get_score_service)]
UserServiceDep = Annotated[UserService, Depends(get_user_service)]
BatchServiceDep = Annotated[BatchService, Depends(get_batch_service)]
OpenRLHFServiceDep = Annotated[OpenRLHFService, Depends(get_openrlhf_service)]
IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
