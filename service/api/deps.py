"""Typed accessors for what the app built at start-up (no globals: all of it lives on app.state)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.api.batch import BatchService
from service.api.openrlhf import OpenRLHFService
from service.api.serving import ScoreService
from service.api.state import AppState
from service.api.users import UserService
from service.coordination.idempotency import Idempotency
from service.core.config import Settings


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


StateDep = Annotated[AppState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ScoreServiceDep = Annotated[ScoreService, Depends(get_score_service)]
UserServiceDep = Annotated[UserService, Depends(get_user_service)]
BatchServiceDep = Annotated[BatchService, Depends(get_batch_service)]
OpenRLHFServiceDep = Annotated[OpenRLHFService, Depends(get_openrlhf_service)]
IdempotencyDep = Annotated[Idempotency, Depends(get_idempotency)]
