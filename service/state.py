"""What `create_app` builds once per process and the routes read (via `service.api.deps`)."""

from __future__ import annotations

from dataclasses import dataclass

from prototypes.neighbours import PrototypeStore
from service.api.serving import ScoreService
from service.cache.caches import Caches
from service.config import Settings
from service.engine.scorer import ScoringEngine
from service.metrics import Metrics


@dataclass
class AppState:
    settings: Settings
    engine: ScoringEngine
    score_service: ScoreService
    metrics: Metrics
    caches: Caches
    startup_error: str | None = None
    prototypes: PrototypeStore | None = None  # set once the artefact is loaded
