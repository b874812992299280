"""`pgenrm prototypes learn`: from preference rows to a versioned prototype artefact.

For every (user, train/val example) the configured backend writes the preference analysis
(PART 1 of an evaluation chain: the LLM's text, or the embedded backend's persona and rubric),
which is embedded; a user's profile is the normalised mean of their analyses. Prototypes are
initialised by k-means and optimised with the paper's full loss (`prototypes.learn`); users are
indexed under their nearest learnt prototype. Test rows are never read.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from prototypes.artifact import UserEntry, write_artifact
from prototypes.index import ProfileIndex
from prototypes.learn import LearnConfig, UserEvents, learn_prototypes
from service.core.embedder import Embedder
from service.core.inputs import PreferencePair
from service.core.rows import Row, load_rows
from service.engine.backend import Backend
from service.neighbours.profiles import ProfileBuilder


@dataclass(frozen=True)
class JobConfig:
    learn: LearnConfig = field(default_factory=LearnConfig)
    history_k: int = 3  # other pairs shown when writing each example's analysis
    max_pairs_per_user: int | None = None  # cap (seeded sample) for very active users
    concurrency: int = 8  # analyses in flight (matters for an LLM backend)
    seed: int = 0


def _group(rows: Sequence[Row], cap: int | None, seed: int) -> dict[str, list[PreferencePair]]:
    users: dict[str, list[PreferencePair]] = defaultdict(list)
    for row in rows:
        users[row.user_id].append(row.as_pair())
    if cap is not None:
        rng = np.random.default_rng(seed)
        for user, pairs in users.items():
            if len(pairs) > cap:
                keep = sorted(rng.choice(len(pairs), cap, replace=False))
                users[user] = [pairs[i] for i in keep]
    return dict(users)


def _embed(embedder: Embedder, texts: list[str], desc: str, progress: bool) -> np.ndarray:
    out = np.zeros((len(texts), embedder.dim), np.float32)
    step = 256
    for start in tqdm(range(0, len(texts), step), desc=desc, unit="batch", disable=not progress):
        out[start : start + step] = embedder.encode(texts[start : start + step])
    return out


async def learn_job(
    paths: Sequence[Path],
    out: Path,
    backend: Backend,
    embedder: Embedder,
    config: JobConfig | None = None,
    *,
    progress: bool = True,
) -> Path:
    config = config or JobConfig()
    started = time.time()
    rows: list[Row] = []
    sources: list[dict[str, Any]] = []
    for path in paths:
        loaded, report = load_rows(path)
        kept = [r for r in loaded if r.split in ("train", "val")]
        rows += kept
        sources.append({"path": str(path), "sha256": report.sha256, "rows_used": len(kept)})
    users = _group(rows, config.max_pairs_per_user, config.seed)
    if not users:
        raise ValueError("no train/val rows to learn prototypes from")

    builder = ProfileBuilder(backend, embedder, history_k=config.history_k)
    jobs = [(u, i) for u, pairs in users.items() for i in range(len(pairs))]
    gate = asyncio.Semaphore(config.concurrency)
    bar = tqdm(total=len(jobs), desc="analyses", unit="example", disable=not progress)

    async def one(user: str, index: int) -> str | None:
        async with gate:
            try:
                return await builder.analysis(user, users[user], index)
            finally:
                bar.update(1)

    analyses = await asyncio.gather(*(one(u, i) for u, i in jobs))
    bar.close()
    failed = sum(a is None for a in analyses)
    texts = [a for a in analyses if a]
    vectors = _embed(embedder, texts, "embedding analyses", progress)

    by_user: dict[str, list[int]] = defaultdict(list)
    position = 0
    for (user, _), analysis in zip(jobs, analyses, strict=True):
        if analysis:
            by_user[user].append(position)
            position += 1
    names = [u for u in users if by_user[u]]
    profiles = np.stack([vectors[by_user[u]].mean(axis=0) for u in names]).astype(np.float32)
    profiles /= np.linalg.norm(profiles, axis=1, keepdims=True) + 1e-12

    pairs = [p for u in names for p in users[u]]
    prompts = _embed(embedder, [p.prompt for p in pairs], "embedding prompts", progress)
    chosen = _embed(embedder, [p.chosen for p in pairs], "embedding chosen", progress)
    rejected = _embed(embedder, [p.rejected for p in pairs], "embedding rejected", progress)
    events, entries, start = [], [], 0
    for i, user in enumerate(names):
        n = len(users[user])
        span = slice(start, start + n)
        events.append(UserEvents(user, profiles[i], prompts[span], chosen[span], rejected[span]))
        entries.append((user, tuple(users[user]), prompts[span]))
        start += n

    result = await asyncio.to_thread(learn_prototypes, events, config.learn, progress=progress)
    index = ProfileIndex.build(result.prototypes, profiles, result.assignment)
    manifest = {
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "embedder": {"name": embedder.name, "dim": embedder.dim},
        "k": result.k,
        "data": sources,
        "splits_used": ["train", "val"],
        "counts": {
            "users": len(names),
            "rows": len(rows),
            "analyses": len(texts),
            "analyses_failed": failed,
        },
        "analysis_backend": {"name": backend.name, "model": backend.model},
        "hyper_parameters": {
            **asdict(config.learn),
            "history_k": config.history_k,
            "max_pairs_per_user": config.max_pairs_per_user,
        },
        "learn_history": result.history,
        "seconds": round(time.time() - started, 1),
    }
    return write_artifact(
        out,
        manifest=manifest,
        prototypes=result.prototypes,
        prototypes_init=result.prototypes_init,
        profiles=profiles,
        users=[
            UserEntry(u, int(result.assignment[i]), tuple(x.to_json() for x in p), q)
            for i, (u, p, q) in enumerate(entries)
        ],
        index=index,
    )
