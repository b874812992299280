"""What `create_app` builds once per process and the routes read (via `service.api.deps`)."""

from __future__ import annotations

from dataclasses import dataclass

from service.api.auth import Gatekeeper
from service.api.batch import BatchService
from service.api.comparing import CompareService
from service.api.critiquing import CritiqueService
from service.api.openrlhf import OpenRLHFService
from service.api.serving import ScoreService
from service.api.users import UserService
from service.backends.embedded.backend import EmbeddedBackend
from service.coordination.idempotency import Idempotency
from service.core.config import Settings
from service.core.metrics import Metrics
from service.engine.cache import Caches
from service.engine.scorer import ScoringEngine
from service.neighbours.store import PrototypeStore


@dataclass
class AppState:
    settings: Settings
    engine: ScoringEngine
    score_service: ScoreService
    user_service: UserService
    batch_service: BatchService
    compare_service: CompareService
    critique_service: CritiqueService
    openrlhf_service: OpenRLHFService
    idempotency: Idempotency
    gatekeeper: Gatekeeper
    metrics: Metrics
    caches: Caches
    # The embedded backend among the engine's (backend or fallback), if any: prototype profiles
    # are built with its analyses and embedder.
    embedded: EmbeddedBackend | None = None
    startup_error: str | None = None
    prototypes: PrototypeStore | None = None  # set once the artefact is loaded
