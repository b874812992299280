"""`create_app(settings)`: the FastAPI application, with no import-time state.

The app starts answering at once; the embedder and backend load in the background, and
`/readyz` turns 200 when they are in (scoring before that gets a 503 with Retry-After). A worker
of a multi-process server instead loads before it starts accepting connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from prototypes.artifact import ArtifactError
from service import __version__
from service.api._security_headers import SecurityHeadersMiddleware
from service.api.auth import Gatekeeper
from service.api.batch import BatchService
from service.api.comparing import CompareService
from service.api.critiquing import CritiqueService
from service.api.errors import install_error_handlers
from service.api.middleware import MetricsMiddleware, RequestIdMiddleware, route_methods
from service.api.openrlhf import OpenRLHFService
from service.api.routes import (
    admin,
    compare,
    critique,
    health,
    metrics,
    openrlhf,
    score,
    ui,
    users,
)
from service.api.serving import ScoreService
from service.api.state import AppState
from service.api.users import UserService
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.openai.workers import normalise_url
from service.cache.memory import MemoryStore
from service.core.config import Settings
from service.core.keys import is_loopback, load_keys
from service.core.metrics import Metrics, export_zeros, multiprocess, process_exited
from service.core.process_metrics import sample_forever
from service.engine.backend import Backend
from service.engine.scorer import EngineOptions, ScoringEngine
from service.factory import (
    build_backend,
    build_caches,
    build_critic,
    build_embedded,
    build_fallback,
    build_groups,
    build_idempotency,
    build_limiter,
    build_users,
)
from service.neighbours.profiles import ProfileBuilder
from service.neighbours.source import PrototypeNeighbours
from service.neighbours.store import PrototypeStore

log = logging.getLogger("pgenrm")


def build_state(
    settings: Settings, backend: Backend | None = None, fallback: Backend | None = None
) -> AppState:
    metrics = Metrics()
    caches = build_caches(settings, metrics)
    backend = backend or build_backend(settings, caches)
    fallback = fallback if fallback is not None else build_fallback(settings, caches)
    for b in (backend, fallback):
        if b is not None:
            b.metrics = metrics
        if isinstance(b, EmbeddedBackend) and b.caches is None:
            b.caches = caches  # one handed in ready-made (tests) still caches like the app's
    engine = ScoringEngine(
        backend,
        options=EngineOptions(
            ind_weight=settings.ind_weight,
            pro_weight=settings.pro_weight,
            parse_retries=settings.parse_retries,
            rotate_candidates=settings.shuffle_candidates,
            deadline_s=settings.score_deadline_s,
        ),
        fallback=fallback,
        metrics=metrics,
    )
    embedded = next((b for b in (backend, fallback) if isinstance(b, EmbeddedBackend)), None)
    users = build_users(settings)
    scorer = ScoreService(engine, settings, metrics, users, build_groups(settings))
    api_keys = settings.api_keys.get_secret_value() if settings.api_keys else None
    keyring = load_keys(settings.api_keys_file, api_keys)
    return AppState(
        settings=settings,
        engine=engine,
        score_service=scorer,
        user_service=UserService(users, caches, engine, settings),
        batch_service=BatchService(scorer, settings),
        compare_service=CompareService(scorer),
        critique_service=CritiqueService(build_critic(backend, embedded), settings),
        openrlhf_service=OpenRLHFService(scorer),
        idempotency=build_idempotency(settings),
        gatekeeper=Gatekeeper(keyring, build_limiter(settings), settings, metrics),
        metrics=metrics,
        caches=caches,
        embedded=embedded,
    )


async def load_prototypes(state: AppState) -> None:
    """Open the artefact and plug prototype-level scaling into the engine."""
    settings = state.settings
    assert settings.prototypes_dir is not None
    # Profiles are built with the embedded backend's analyses (cheap, and what the default
    # artefacts are learnt from); it also provides the embedder.
    analysis = state.embedded
    if analysis is None:
        analysis = build_embedded(settings, state.caches)
        await analysis.start()
    embedder = analysis.embedder
    store = PrototypeStore(settings.prototypes_dir, (embedder.name, embedder.dim))
    await store.reload()
    if settings.prototypes_watch_s > 0:
        store.watch(settings.prototypes_watch_s)
    profiles = ProfileBuilder(
        analysis, embedder, history_k=settings.prototype_history_k, caches=state.caches
    )
    state.engine.use_neighbours(PrototypeNeighbours(store, profiles, settings.prototype_history_k))
    state.prototypes = store


async def _load(state: AppState, owns_process: bool) -> None:
    try:
        await state.engine.start()
        if state.settings.prototypes_dir is not None:
            await load_prototypes(state)
        ready = state.engine.readiness()
        state.metrics.build_info.labels(
            version=__version__, backend=ready.backend, model=ready.model
        ).set(1)
        log.info("ready: backend=%s model=%s", ready.backend, ready.model)
        if owns_process:
            # What start-up built (the model, the params, the framework) lives as long as the
            # process: move it out of the collector's generations, so that the full
            # collections a busy worker triggers do not walk it again and again. An app that
            # shares its process (tests, an embedding app) skips it: there the collection
            # walks the host's whole heap (~0.4 s a start in the test suite).
            gc.collect()
            gc.freeze()
    except Exception as error:
        state.startup_error = _public_reason(error)
        log.exception("start-up failed")


def _start_metrics(state: AppState, app: FastAPI) -> asyncio.Task[None]:
    """Counters at 0 for every label set known now, this start counted, and the task that
    samples memory and cache bytes."""
    settings = state.settings
    workers = settings.openai_urls if settings.backend == "openai" else []
    export_zeros(
        state.metrics,
        routes=route_methods(app.router.routes),
        store=state.caches.store.name,
        workers=tuple(normalise_url(url) for url in workers),
    )
    state.metrics.worker_starts.inc()

    def cache_bytes() -> dict[str, int]:
        store = state.caches.store
        sizes = {"store": store.nbytes if isinstance(store, MemoryStore) else 0}
        try:
            sizes["embeddings"] = state.embedded.embedder.cache_bytes if state.embedded else 0
        except RuntimeError:  # not loaded yet
            sizes["embeddings"] = 0
        return sizes

    return asyncio.create_task(sample_forever(state.metrics, cache_bytes))


def _public_reason(error: Exception) -> str:
    """What /readyz may tell anyone about a failed start-up: an artefact error's own message
    (written without paths), else only the error's kind; the log has the full error."""
    if isinstance(error, ArtifactError):
        return f"prototype artefact refused: {error}"
    return f"{type(error).__name__} (the server log has the details)"


def create_app(
    settings: Settings | None = None,
    *,
    backend: Backend | None = None,
    fallback: Backend | None = None,
    owns_process: bool = False,
) -> FastAPI:
    """The app for these settings. `owns_process`: it lives as long as its process (a
    server's worker), so what start-up built is frozen out of the garbage collector's way."""
    settings = settings or Settings()
    state = build_state(settings, backend, fallback)

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        if state.gatekeeper.keyring.empty and not is_loopback(settings.host):
            log.warning(
                "INSECURE: no API keys and listening on %s (PGENRM_INSECURE): anyone who can "
                "connect may score, store and read users",
                settings.host,
            )
        sampling = _start_metrics(state, application)
        loading = asyncio.create_task(_load(state, owns_process))
        if multiprocess():
            # One of several workers on a shared socket: join it only once loaded, so that a
            # sibling still loading never answers 503 while /readyz said ready.
            await loading
        try:
            yield
        finally:
            for task in (loading, sampling):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await state.engine.close()
            if state.prototypes is not None:
                await state.prototypes.close()
            await state.caches.close()
            await state.user_service.store.close()
            await state.score_service.groups.close()
            await state.idempotency.close()
            await state.gatekeeper.limiter.close()
            if owns_process:
                # Give what start-up froze back to the collector: a worker whose app stops
                # before its process ends must not keep the app's objects for good.
                gc.unfreeze()
            process_exited()

    docs = settings.docs_enabled
    app = FastAPI(
        title="pgenrm",
        summary="Personalized generative reward scoring (P-GenRM) with test-time scaling",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.state.pgenrm = state
    install_error_handlers(app)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics, routes=app.router.routes)
    app.add_middleware(SecurityHeadersMiddleware)
    if settings.cors_origins:  # off by default: no browser page on another origin may call
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
            expose_headers=["Retry-After", "X-Request-ID", "Idempotent-Replayed"],
            max_age=600,
        )
    app.add_middleware(RequestIdMiddleware)  # added last: outermost, every line has the id
    app.include_router(score.router)
    app.include_router(compare.router)
    app.include_router(critique.router)
    app.include_router(users.router)
    app.include_router(openrlhf.router)
    app.include_router(health.router)
    app.include_router(admin.router)
    app.include_router(metrics.router)
    app.include_router(ui.router)
    return app
