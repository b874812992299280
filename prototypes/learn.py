"""Offline learning of user prototypes (P-GenRM section 3).

Why: prototype-level scaling (Pro-M) scores an input with the histories of similar users inside the
user's nearest prototype. Prototypes start as spherical k-means centroids of the users' profile
embeddings; they are then refined so that a prototype, conditioned on the current query and on an
attention summary of the user's own other events, predicts the user's pairwise choices. Both
regularisers of the paper are applied (the released code never does): a centre pull toward the
members' mean profile and a transition pull toward an EMA of the prototype's past values.

CPU torch only, seeded and deterministic. Memory stays bounded: events live in two flat (N, d)
arrays (queries, chosen - rejected) and each batch gathers its own padded context on the fly.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from tqdm import tqdm

__all__ = ["LearnConfig", "LearnResult", "UserEvents", "kmeans_init", "learn_prototypes"]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
NORM_TOL = 1e-2  # "unit-ish": embedders in float16/bfloat16 drift a little from norm 1
_CHUNK = 65_536  # rows per chunk when scanning large arrays (norm checks, nearest prototype)
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LearnConfig:
    k: int = 50
    rho: float = 0.5
    lam_q: float = 1.0
    lam_s: float = 1.0
    l_cent: float = 1e-3
    l_tr: float = 1e-3
    ema_decay: float = 0.98
    lr: float = 1e-3
    batch_size: int = 16
    epochs: int = 3
    max_events: int = 32  # events per user the attention pools over (sample if more)
    kmeans_iters: int = 25
    seed: int = 0

    def validate(self) -> None:
        """Reject settings that would fail late or silently do nothing useful."""
        ints = {"k": self.k, "batch_size": self.batch_size, "max_events": self.max_events}
        ints["kmeans_iters"] = self.kmeans_iters
        for name, value in ints.items():
            if value < 1:
                raise ValueError(f"LearnConfig.{name} must be >= 1, got {value}")
        if self.epochs < 0:
            raise ValueError(f"LearnConfig.epochs must be >= 0, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"LearnConfig.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.ema_decay <= 1.0:
            raise ValueError(f"LearnConfig.ema_decay must be in [0, 1], got {self.ema_decay}")
        if self.l_cent < 0 or self.l_tr < 0:
            raise ValueError("LearnConfig.l_cent and l_tr must be >= 0")


@dataclass(frozen=True)
class UserEvents:
    user_id: str
    profile: F32  # (d,), L2-normalised
    query: F32  # (n_i, d)
    chosen: F32  # (n_i, d)
    rejected: F32  # (n_i, d)


@dataclass
class LearnResult:
    prototypes_init: F32  # (K, d) unit rows, from k-means
    prototypes: F32  # (K, d) unit rows, after optimisation
    assignment: I64  # (n_users,) nearest learnt prototype per user
    history: list[dict[str, float]]  # per epoch: loss, pair, cent, tr, accuracy, ...
    encoder: dict[str, F32]  # "W" (d, 2d), "Wq" (d, d), "Ws" (d, d)
    k: int  # effective K


def _unit_rows(x: F32) -> F32:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def _nearest(x: F32, protos: F32) -> I64:
    """Index of the most cosine-similar prototype per row (rows and prototypes are unit)."""
    out = np.empty(x.shape[0], dtype=np.int64)
    for s in range(0, x.shape[0], _CHUNK):
        out[s : s + _CHUNK] = np.argmax(x[s : s + _CHUNK] @ protos.T, axis=1)
    return out


def _check_unit(name: str, x: F32) -> None:
    for s in range(0, x.shape[0], _CHUNK):
        rows = x[s : s + _CHUNK]
        if not np.isfinite(rows).all():
            raise ValueError(f"{name} holds non-finite values")
        norms = np.linalg.norm(rows, axis=1)
        bad = np.flatnonzero(np.abs(norms - 1.0) > NORM_TOL)
        if bad.size:
            row = s + int(bad[0])
            raise ValueError(
                f"{name} rows must be L2-normalised: row {row} has norm {norms[bad[0]]:.4f}"
            )


def kmeans_init(profiles: F32, k: int, *, seed: int = 0, iters: int = 25) -> tuple[F32, I64]:
    """Spherical FAISS k-means: (K, d) unit prototypes, K = min(k, n), and each row's nearest."""
    x = np.ascontiguousarray(profiles, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"profiles must be a non-empty (n, d) array, got shape {x.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if iters < 1:
        raise ValueError(f"iters must be >= 1, got {iters}")
    _check_unit("profiles", x)
    n, d = x.shape
    k_eff = min(k, n)
    # min_points=1 silences FAISS's "too few points" notice for small K; max_points high enough
    # that FAISS never subsamples: every user counts, and results do not depend on the subsample.
    km = faiss.Kmeans(
        d,
        k_eff,
        niter=iters,
        seed=seed,
        spherical=True,
        verbose=False,
        min_points_per_centroid=1,
        max_points_per_centroid=-(-n // k_eff) + 1,
    )
    km.train(x)
    protos = _unit_rows(np.asarray(km.centroids, dtype=np.float32).reshape(k_eff, d))
    return protos, _nearest(x, protos)


@dataclass(frozen=True)
class _Packed:
    profiles: F32  # (n_users, d)
    query: torch.Tensor  # (N, d) all events, user after user
    diff: torch.Tensor  # (N, d) chosen - rejected: all the loss and the encoder need of them
    starts: I64  # (n_users + 1,) event offsets per user


def _pack(users: Sequence[UserEvents]) -> _Packed:
    """Validate and flatten the users' events; one copy, no per-event Python work."""
    if len(users) == 0:
        raise ValueError("no users to learn prototypes from")
    d = int(np.asarray(users[0].profile).shape[-1])
    if d == 0:
        raise ValueError("profile embeddings are empty (d = 0)")
    counts = np.zeros(len(users), dtype=np.int64)
    parts: dict[str, list[F32]] = {"query": [], "chosen": [], "rejected": []}
    for i, user in enumerate(users):
        if np.shape(user.profile) != (d,):
            raise ValueError(
                f"user {user.user_id!r}: profile shape {np.shape(user.profile)}, expected ({d},)"
            )
        n = -1
        for name, rows in parts.items():
            arr = np.asarray(getattr(user, name), dtype=np.float32)
            if arr.size == 0:
                arr = arr.reshape(0, d)
            if arr.ndim != 2 or arr.shape[1] != d:
                raise ValueError(
                    f"user {user.user_id!r}: {name} shape {arr.shape}, expected (n, {d})"
                )
            if n >= 0 and arr.shape[0] != n:
                raise ValueError(f"user {user.user_id!r}: query/chosen/rejected lengths differ")
            n = arr.shape[0]
            rows.append(arr)
        counts[i] = n
    profiles = np.stack([np.asarray(u.profile, dtype=np.float32) for u in users])
    _check_unit("profiles", profiles)
    flat = {name: np.concatenate(rows, axis=0) for name, rows in parts.items()}
    for name, arr in flat.items():
        _check_unit(f"{name} embeddings", arr)
    diff = flat.pop("chosen")
    diff -= flat.pop("rejected")
    starts = np.zeros(len(users) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    q = torch.from_numpy(flat["query"])
    return _Packed(profiles, q, torch.from_numpy(diff), starts)


def _contexts(
    targets: I64, users: I64, starts: I64, max_events: int, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Global indices of every target's other events, flat, and the sample each belongs to.

    Flat (ragged) rather than padded (B, M, d): no matmul or gradient is spent on padding.
    A user with more than max_events other events gets a seeded sample without replacement.
    """
    start = starts[users]
    n_other = starts[users + 1] - start - 1
    local_t = targets - start
    m = np.minimum(n_other, max_events)
    cols = np.arange(int(m.max()), dtype=np.int64)[None, :]
    mask = cols < m[:, None]
    local = cols + (cols >= local_t[:, None])  # the j-th "other" event skips the target
    for r in np.flatnonzero(n_other > max_events):  # at most batch_size rows, never per event
        pick = rng.choice(int(n_other[r]), size=max_events, replace=False)
        local[r] = pick + (pick >= local_t[r])
    seg = np.nonzero(mask)[0]
    return torch.from_numpy((start[:, None] + local)[mask]), torch.from_numpy(seg)


def _pool(o: torch.Tensor, key: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
    """v_b = sum_i softmax_i(o_i . key_b) o_i over each sample b's own events (segment softmax)."""
    b = key.shape[0]
    logits = (o * key[seg]).sum(dim=1)
    peak = torch.full((b,), -math.inf).scatter_reduce(0, seg, logits.detach(), "amax")
    e = torch.exp(logits - peak[seg])
    alpha = e / torch.zeros(b).index_add(0, seg, e)[seg]
    return torch.zeros(b, o.shape[1]).index_add(0, seg, alpha.unsqueeze(1) * o)


def _cluster_means(profiles: torch.Tensor, assign: I64, protos: torch.Tensor) -> torch.Tensor:
    """mu_j = mean member profile; an empty cluster gets its prototype (no pull; never sampled)."""
    k = protos.shape[0]
    idx = torch.from_numpy(assign)
    sums = torch.zeros_like(protos).index_add_(0, idx, profiles)
    sizes = torch.bincount(idx, minlength=k).to(profiles.dtype).unsqueeze(1)
    return torch.where(sizes > 0, sums / sizes.clamp_min(1.0), protos.detach())


def learn_prototypes(
    users: Sequence[UserEvents], config: LearnConfig = LearnConfig(), *, progress: bool = False
) -> LearnResult:
    """K-means init, then minimise L_pair + l_cent*||a-mu||^2 + l_tr*||a-p||^2 over (user, target).

    Members are reassigned to their nearest prototype (cosine) at the start of each epoch, which
    refreshes mu_j, and once more at the end. history's "cent" and "tr" are the unweighted squared
    distances averaged over samples; "loss" is the weighted total.
    """
    config.validate()
    data = _pack(users)
    init, _ = kmeans_init(data.profiles, config.k, seed=config.seed, iters=config.kmeans_iters)
    k, d = init.shape
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)

    protos = torch.nn.Parameter(torch.from_numpy(init.copy()))
    w = torch.nn.Parameter(torch.empty(d, 2 * d))
    torch.nn.init.xavier_uniform_(w, generator=gen)
    # Near-zero query/summary maps: training starts from z ~ a_j, the plain prototype scorer.
    wq = torch.nn.Parameter(torch.randn(d, d, generator=gen) * 0.01)
    ws = torch.nn.Parameter(torch.randn(d, d, generator=gen) * 0.01)
    ema = protos.detach().clone()  # p_j

    counts = np.diff(data.starts)
    event_user = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    samples = np.flatnonzero(counts[event_user] >= 2).astype(np.int64)
    history: list[dict[str, float]] = []

    def result() -> LearnResult:
        final = protos.detach().numpy().copy()
        encoder = {
            name: t.detach().numpy().copy() for name, t in (("W", w), ("Wq", wq), ("Ws", ws))
        }
        return LearnResult(init, final, _nearest(data.profiles, final), history, encoder, k)

    if samples.size == 0:
        log.warning("no user has 2+ events: no (target, context) pairs; keeping k-means prototypes")
        history.append({"epoch": 0.0, "skipped_no_pairs": 1.0, "samples": 0.0})
        return result()

    # No weight decay on the prototypes: they are renormalised anyway, and decay is not in the loss.
    groups: list[dict[str, Any]] = [
        {"params": [protos], "weight_decay": 0.0},
        {"params": [w, wq, ws]},
    ]
    opt = torch.optim.AdamW(groups, lr=config.lr, fused=True)  # fused: ~5x faster step on CPU
    profiles_t = torch.from_numpy(data.profiles)
    scale = 1.0 / math.sqrt(d)
    steps = -(-samples.size // config.batch_size)
    bar = tqdm(total=config.epochs * steps, disable=not progress, desc="prototypes", unit="step")
    for epoch in range(config.epochs):
        began = time.perf_counter()
        assign = _nearest(data.profiles, protos.detach().numpy())
        mu = _cluster_means(profiles_t, assign, protos)
        order = rng.permutation(samples)
        totals = torch.zeros(5, dtype=torch.float64)  # loss, pair, cent, tr, correct (sums)
        for s in range(0, order.size, config.batch_size):
            targets = order[s : s + config.batch_size]
            owners = event_user[targets]
            ctx, seg = _contexts(targets, owners, data.starts, config.max_events, rng)
            tgt = torch.from_numpy(targets)
            j = torch.from_numpy(assign[owners])
            a = protos[j]  # (B, d)
            q_t = data.query[tgt]
            # o = tanh(W [q ; y+ - y-]) for every context event of the batch in one matmul.
            o = torch.tanh(torch.cat([data.query[ctx], data.diff[ctx]], dim=1) @ w.T)
            # o.q_t/sqrt(d) + rho*o.a_j/sqrt(d) == o.(q_t + rho*a_j)/sqrt(d)
            v = _pool(o, (q_t + config.rho * a) * scale, seg)
            z = a + config.lam_q * (q_t @ wq.T) + config.lam_s * (v @ ws.T)
            margin = (z * data.diff[tgt]).sum(dim=1)
            pair = F.softplus(-margin)  # -log sigmoid(margin), stable
            cent = (a - mu[j]).pow(2).sum(dim=1)
            tr = (a - ema[j]).pow(2).sum(dim=1)
            loss = pair.mean() + config.l_cent * cent.mean() + config.l_tr * tr.mean()
            opt.zero_grad(set_to_none=True)
            torch.autograd.backward(loss)
            opt.step()
            with torch.no_grad():
                protos.div_(protos.norm(dim=1, keepdim=True).clamp_min(1e-12))
                ema.mul_(config.ema_decay).add_(protos, alpha=1.0 - config.ema_decay)
                b = float(targets.size)
                totals += torch.stack(
                    [loss * b, pair.sum(), cent.sum(), tr.sum(), (margin > 0).sum()]
                ).double()  # ties (margin == 0) count as wrong, as in the evaluation
            bar.update(1)
        mean = (totals / float(samples.size)).tolist()
        entry = dict(zip(("loss", "pair", "cent", "tr", "accuracy"), mean, strict=True))
        entry.update(
            epoch=float(epoch + 1),
            samples=float(samples.size),
            steps=float(steps),
            seconds=time.perf_counter() - began,
        )
        history.append(entry)
        bar.set_postfix(loss=f"{entry['loss']:.4f}", acc=f"{entry['accuracy']:.3f}")
        log.info("prototypes epoch %d: %s", epoch + 1, entry)
    bar.close()
    return result()
