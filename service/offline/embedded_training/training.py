"""`pgenrm train-embedded`: learn the embedded backend's expert library from training rows.

Only `train`/`val` rows are read; `test` rows never reach a fit. For every training user with
enough pairs (or, where a dataset has more users than experts to spare, every cluster of its
similar users), for the pooled population and for each dataset's own population, it fits one
Bradley-Terry logistic regression per view (style, content, wording), scales each view's margin
to unit spread, and calibrates the sum to log-odds. How far a history may move the score from
the population is then calibrated on held-out rows (calibration.py); which rows each expert
learns from is groups.py. The result is a versioned file whose manifest records the data
hashes it came from, the embedder's fingerprint and the calibration search.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from tqdm import tqdm

from service.backends.embedded.features import style_matrix
from service.backends.embedded.lexical import CharNgrams, fit_idf
from service.backends.embedded.params import Calibration, EmbeddedParams, Expert
from service.backends.embedded.views import content_vectors
from service.core.embedder import Embedder
from service.core.rows import Row, load_rows
from service.offline.embedded_training import blending
from service.offline.embedded_training.calibration import calibrate
from service.offline.embedded_training.groups import Group, expert_groups

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class TrainConfig:
    # Inverse L2 strength per view: chosen per expert by cross-validation over `c_grid`
    # (held-out log-loss); these are the fallbacks for experts too small to cross-validate.
    c_style: float = 0.3
    c_content: float = 0.1
    c_wording: float = 0.3
    c_grid: tuple[float, ...] = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
    cv_folds: int = 3
    cv_max_pairs: int = 3000  # C is chosen on at most this many of an expert's pairs
    cv_min_pairs: int = 300  # smaller experts take the fallbacks (their folds would be noise)
    # The identification experts (history likelihoods for the posterior) are fitted with little
    # regularisation, so that a returning user's history is recognised by the profile it taught.
    identify_c: tuple[float, float, float] = (3.0, 3.0, 10.0)
    min_pairs: int = 30  # fewer pairs than this: the user only feeds the population expert
    max_experts: int = 64  # more users than this: one expert per cluster of similar users
    wording_top: int = 40_000  # wording weights kept per expert (largest magnitudes)
    max_population_rows: int = 20_000
    calibrate: bool = True  # tune the trust in short histories on val rows (see calibration.py)
    # What the content view embeds per answer (see views.CONTENT_VIEWS); "answer" costs a second
    # embedding pass per scored text, the largest part of a cold score.
    content_views: tuple[str, ...] = ("qa", "answer")
    seed: int = 0


@dataclass
class Corpus:
    """Training rows as differences of per-text views (text = a response in its prompt)."""

    rows: list[Row]
    dataset: list[str]
    style: F64  # (n_texts, S) standardised
    content: F64  # (n_texts, 2*dim)
    wording: sp.csr_matrix  # (n_texts, N)
    chosen: npt.NDArray[np.int64]  # per row: text index
    rejected: npt.NDArray[np.int64]
    style_mean: F64
    style_std: F64
    idf: tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]

    def diff(self, index: npt.NDArray[np.int64]) -> tuple[F64, F64, sp.csr_matrix]:
        c, r = self.chosen[index], self.rejected[index]
        return (
            self.style[c] - self.style[r],
            self.content[c] - self.content[r],
            sp.csr_matrix(self.wording[c] - self.wording[r]),
        )


def build_corpus(
    rows: Sequence[Row],
    datasets: Sequence[str],
    embedder: Embedder,
    progress: bool = True,
    views: Sequence[str] = ("qa", "answer"),
) -> Corpus:
    keys: dict[tuple[str, str], int] = {}
    chosen: list[int] = []
    rejected: list[int] = []
    for row in rows:
        for answer, out in ((row.chosen, chosen), (row.rejected, rejected)):
            out.append(keys.setdefault((row.as_pair().prompt, answer), len(keys)))
    prompts = [p for p, _ in keys]
    answers = [a for _, a in keys]
    raw = style_matrix(answers, prompts)
    mean, std = raw.mean(axis=0), raw.std(axis=0) + 1e-6
    idf = fit_idf(answers)
    content = np.zeros((len(answers), len(views) * embedder.dim), np.float64)
    batch = 256
    for start in tqdm(
        range(0, len(answers), batch), desc="embedding", unit="batch", disable=not progress
    ):
        span = slice(start, start + batch)
        content[span] = content_vectors(embedder, views, prompts[span], answers[span])
    wording = CharNgrams(*idf).transform(answers)
    return Corpus(
        rows=list(rows),
        dataset=list(datasets),
        style=(raw - mean) / std,
        content=content,
        wording=wording,
        chosen=np.array(chosen, np.int64),
        rejected=np.array(rejected, np.int64),
        style_mean=mean,
        style_std=std,
        idf=idf,
    )


def _bradley_terry(x: Any, c: float) -> F64:
    """Weights of a symmetric BT logistic regression (no intercept) on differences x."""
    from sklearn.linear_model import LogisticRegression

    both = sp.vstack([x, -x]).tocsr() if sp.issparse(x) else np.vstack([x, -x])
    labels = np.r_[np.ones(x.shape[0]), np.zeros(x.shape[0])]
    model = LogisticRegression(C=c, fit_intercept=False, max_iter=3000)
    return np.asarray(model.fit(both, labels).coef_.ravel(), dtype=np.float64)


def _cross_validated_c(
    x: Any, fallback: float, config: TrainConfig, groups: npt.NDArray[np.str_] | None = None
) -> float:
    """The C of `config.c_grid` with the lowest held-out log-loss (k-fold over pairs).

    With `groups` (the debate each pair is from) the folds hold out whole debates, as the
    test split does: a weight on one debate's wording that no other debate shares then costs
    held-out loss instead of looking free."""
    n = x.shape[0]
    if n < max(10 * config.cv_folds, config.cv_min_pairs) or len(config.c_grid) < 2:
        return fallback
    folds = cv_folds(n, config, groups)
    losses = []
    for c in config.c_grid:
        loss = 0.0
        for f, held in enumerate(folds):
            rest = np.concatenate([g for j, g in enumerate(folds) if j != f])
            w = _bradley_terry(x[rest], c)
            margin = np.asarray(x[held] @ w).ravel()
            loss += float(np.logaddexp(0.0, -margin).sum())
        losses.append(loss)
    return float(config.c_grid[int(np.argmin(losses))])


def cv_folds(
    n: int, config: TrainConfig, groups: npt.NDArray[np.str_] | None = None
) -> list[npt.NDArray[np.int64]]:
    """`config.cv_folds` folds over at most `cv_max_pairs` of n pairs (seeded); with `groups`
    naming at least as many debates as folds, every debate's pairs fall in one fold."""
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(n)[: config.cv_max_pairs]
    if groups is not None:
        named = rng.permutation(np.unique(groups[order]))
        if named.size >= config.cv_folds:
            fold_of = {g: f % config.cv_folds for f, g in enumerate(named)}
            assigned = np.array([fold_of[g] for g in groups[order]])
            return [order[assigned == f] for f in range(config.cv_folds)]
    return list(np.array_split(order, config.cv_folds))


def fit_expert(
    corpus: Corpus,
    index: npt.NDArray[np.int64],
    label: str,
    kind: str,
    config: TrainConfig,
    fixed_c: tuple[float, float, float] | None = None,
) -> Expert:
    """One expert; C per view by cross-validation unless `fixed_c` is given."""
    from sklearn.linear_model import LogisticRegression

    views = corpus.diff(index)
    named = [corpus.rows[i].extras.get("topic") for i in index]
    topics = np.array([str(t) for t in named]) if all(t is not None for t in named) else None
    weights, margins = [], []
    chosen_c: list[float] = []
    fallback = (config.c_style, config.c_content, config.c_wording)
    for j, x in enumerate(views):
        c = fixed_c[j] if fixed_c else _cross_validated_c(x, fallback[j], config, topics)
        chosen_c.append(c)
        w = _bradley_terry(x, c)
        m = np.asarray(x @ w).ravel()
        scale = float(m.std()) + 1e-9
        weights.append(w / scale)
        margins.append(m / scale)
    total = np.sum(margins, axis=0)
    calib = LogisticRegression(fit_intercept=False).fit(
        np.r_[total, -total][:, None], np.r_[np.ones(total.size), np.zeros(total.size)]
    )
    beta = float(calib.coef_.ravel()[0])
    style, content, wording = (beta * w for w in weights)
    top = np.argsort(-np.abs(wording))[: config.wording_top]
    top = np.sort(top[wording[top] != 0])
    return Expert(
        label=label,
        kind=kind,
        n_pairs=int(index.size),
        style=style.astype(np.float32),
        content=content.astype(np.float32),
        wording_index=top.astype(np.int64),
        wording_value=wording[top].astype(np.float32),
        regularisation=tuple(chosen_c),
    )


CENTROIDS_PER_DATASET = 16  # k-means centres of a dataset's texts: its kinds of answer


def centroids(corpus: Corpus, seed: int = 0) -> dict[str, npt.NDArray[np.float32]]:
    """Per dataset (with several), unit k-means centres of its rows' texts' content vectors
    (`CENTROIDS_PER_DATASET`, spherical): which population's trust a history takes
    (usermodel's `_trust.domain_shares`). One mean per dataset put a fifth of single texts
    nearest another dataset's; several centres per dataset follow its kinds of answer."""
    import faiss

    names = list(dict.fromkeys(corpus.dataset))
    if len(names) < 2 or not corpus.content.shape[1]:
        return {}
    of = np.array(corpus.dataset)
    out: dict[str, npt.NDArray[np.float32]] = {}
    for name in names:
        rows = np.flatnonzero(of == name)
        texts = np.unique(np.r_[corpus.chosen[rows], corpus.rejected[rows]])
        x = corpus.content[texts].astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True) + 1e-12
        k = min(CENTROIDS_PER_DATASET, len(x))
        km = faiss.Kmeans(x.shape[1], k, niter=30, seed=seed, spherical=True, verbose=False)
        km.train(x)
        out[name] = np.asarray(km.centroids, np.float32).reshape(k, x.shape[1])
    return out


def params_version(
    sources: Sequence[dict[str, Any]],
    fingerprint: str,
    calibration: Calibration,
    centroids: dict[str, npt.NDArray[np.float32]] | None = None,
) -> str:
    """`learnt-<date>-<digest>`, the digest over the data, the embedder's fingerprint, the
    calibration and the population centroids: caches key on the version (the backend's model
    name), so params learnt the same day on other vectors or with another trust must not
    share one."""
    shares = {n: hashlib.sha256(c.tobytes()).hexdigest() for n, c in (centroids or {}).items()}
    what = [[s["sha256"] for s in sources], fingerprint, asdict(calibration), shares]
    digest = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:8]
    return f"learnt-{time.strftime('%Y%m%d')}-{digest}"


def train(
    paths: Sequence[Path],
    out: Path,
    embedder: Embedder,
    config: TrainConfig | None = None,
    progress: bool = True,
) -> EmbeddedParams:
    config = config or TrainConfig()
    started = time.time()
    rows: list[Row] = []
    datasets: list[str] = []
    sources: list[dict[str, Any]] = []
    for path in paths:
        loaded, report = load_rows(path)
        kept = [r for r in loaded if r.split in ("train", "val")]
        name = str(kept[0].extras.get("dataset") or path.name.split(".")[0]) if kept else path.stem
        rows += kept
        datasets += [name] * len(kept)
        sources.append(
            {
                "path": str(path),
                "sha256": report.sha256,
                "dataset": name,
                "rows_used": len(kept),
                "malformed": report.malformed_total,
            }
        )
    if not rows:
        raise ValueError("no train/val rows to learn from")
    corpus = build_corpus(rows, datasets, embedder, progress, config.content_views)
    groups = expert_groups(corpus, config)

    def fit_all(chosen: Sequence[Group]) -> tuple[tuple[Expert, ...], tuple[Expert, ...]]:
        """(prediction experts, identification experts) for these groups.

        Each dataset's population first: an expert of that dataset too small to cross-validate
        takes the population's cross-validated C (how far that data's weights generalise)
        rather than a constant."""
        experts: dict[int, Expert] = {}
        identifiers: dict[int, Expert] = {}
        learnt_c: dict[str, tuple[float, float, float]] = {}
        order = sorted(range(len(chosen)), key=lambda i: chosen[i][1] != "population")
        for i in tqdm(order, desc="experts", unit="expert", disable=not progress):
            label, kind, index = chosen[i]
            dataset = label.split("/")[0] if "/" in label else ""
            fixed = None
            if kind != "population" and index.size < max(config.cv_min_pairs, 10 * config.cv_folds):
                fixed = learnt_c.get(dataset)
            experts[i] = fit_expert(corpus, index, label, kind, config, fixed)
            if kind == "population" and dataset:
                regularisation = experts[i].regularisation
                learnt_c[dataset] = (regularisation[0], regularisation[1], regularisation[2])
            # A population is recognised by what generalises, not by the rows it saw: fitted
            # loosely it would memorise every member's history and claim each as its own.
            identifiers[i] = (
                experts[i]
                if kind == "population"
                else fit_expert(corpus, index, label, kind, config, config.identify_c)
            )
        return tuple(experts[i] for i in range(len(chosen))), tuple(
            identifiers[i] for i in range(len(chosen))
        )

    skeleton = EmbeddedParams(
        version=f"learnt-{time.strftime('%Y%m%d')}-{sources[0]['sha256'][:8]}",
        style_mean=corpus.style_mean.astype(np.float32),
        style_std=corpus.style_std.astype(np.float32),
        idf_index=corpus.idf[0],
        idf_value=corpus.idf[1],
        experts=(),
        embedder=embedder.name,
        content_dim=corpus.content.shape[1],
        content_views=tuple(config.content_views),
        centroids=centroids(corpus),
    )
    calibration, search = Calibration(), dict[str, Any](skipped="disabled")
    if config.calibrate:
        calibration, search = calibrate(
            corpus, fit_all, partial(expert_groups, corpus, config), skeleton, seed=config.seed
        )
    experts, identifiers = fit_all(groups)
    chosen: dict[str, list[Any]] = search.get("blends", {})
    experts = blending.apply(experts, {key: (str(t), float(w)) for key, (t, w) in chosen.items()})
    params = replace(
        skeleton,
        version=params_version(sources, embedder.fingerprint, calibration, skeleton.centroids),
        experts=experts,
        identifiers=identifiers,
        calibration=calibration,
        manifest={
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "data": sources,
            "splits_used": ["train", "val"],
            "rows": len(rows),
            "users": len({(d, r.user_id) for d, r in zip(datasets, rows, strict=True)}),
            "hyper_parameters": asdict(config),
            # What made the vectors (runtime, tokens, precision): the service warns if it differs.
            "embedder_fingerprint": embedder.fingerprint,
            "calibration_search": search,
            "train_seconds": round(time.time() - started, 1),
        },
    )
    params.save(out)
    return params
