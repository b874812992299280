"""Typed accessors for what the app built at start-up (no globals: all of it lives on app.state)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.api.serving import ScoreService
from service.api.state import AppState
from service.core.config import Settings


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.pgenrm
    return state


def get_settings(request: Request) -> Settings:
    return get_state(request).settings


def get_score_service(request: Request) -> ScoreService:
    return get_state(request).score_service


StateDep = Annotated[AppState, Depends(get_state)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ScoreServiceDep = Annotated[ScoreService, Depends(get_score_service)]
