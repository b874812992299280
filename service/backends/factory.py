"""Build the configured backend from settings (the only place that knows every backend)."""

from __future__ import annotations

from functools import partial

from prototypes.embed import load_embedder
from service.backends.base import Backend
from service.backends.embedded.backend import EmbeddedBackend
from service.backends.embedded.params import load_params
from service.config import Settings


def build_backend(settings: Settings) -> Backend:
    embedder = partial(
        load_embedder,
        settings.embedder,
        max_seq_length=settings.embedder_max_seq_length,
        cache_size=settings.embedder_cache_size,
        disk_cache=settings.embedder_disk_cache,
    )
    return EmbeddedBackend(embedder, load_params(settings.embedded_params))
