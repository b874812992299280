"""Infer a user's preference model from their history: a posterior over learnt experts.

Each expert (one per training user or user cluster, plus the population) is a linear utility in
log-odds. A history's likelihood under each expert gives a posterior; the user's own history
model (the mean chosen-minus-rejected direction per view, its scale chosen by leave-one-out
likelihood) competes in the same posterior, so a user unlike every expert is still modelled.
Everything works on multisets of history rows (`counts`, one row per Ind-N sample), so each
sample is a real bootstrap variation, and all of a call's samples are inferred together as
arrays: a few small matrix products for the lot, not a few dozen numpy calls per sample.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from service.backends.embedded._fits import RowFit, fitted
from service.backends.embedded._rows import dirichlet_rows
from service.backends.embedded._sparse import compact, dense, on_columns
from service.backends.embedded.features import STYLE_FEATURES, STYLE_GROUPS
from service.backends.embedded.feedback import ranked
from service.backends.embedded.lexical import N_FEATURES
from service.backends.embedded.params import Calibration, EmbeddedParams, Expert
from service.backends.embedded.views import TextViews

F64 = npt.NDArray[np.float64]
CONTENT, WORDING = "content", "wording"
_GROUP_INDEX = {g: [STYLE_FEATURES.index(f) for f in fs] for g, fs in STYLE_GROUPS.items()}
# (S, groups) 0/1: every style group's part of the utility in one matrix product.
GROUP_MASK = np.zeros((len(STYLE_FEATURES), len(_GROUP_INDEX)))
for _j, _idx in enumerate(_GROUP_INDEX.values()):
    GROUP_MASK[_idx, _j] = 1.0


class _Linear:
    """A list of experts as matrices: (J, S) style, (J, C) content, (N, J) wording."""

    def __init__(self, experts: tuple[Expert, ...], content: bool, wording: bool) -> None:
        self.style = np.stack([e.style for e in experts]).astype(np.float64)
        self.content = (
            np.stack([e.content for e in experts]).astype(np.float64) if content else None
        )
        # Dense (N x J, 1 MB per expert in float32): sparse texts @ dense bank is one pass over
        # the texts' n-grams; a sparse bank cost a symbolic product and a conversion per call.
        self.wording: npt.NDArray[np.float32] | None = None
        if wording:
            self.wording = np.zeros((N_FEATURES, len(experts)), np.float32)
            for j, e in enumerate(experts):
                np.add.at(self.wording[:, j], e.wording_index, e.wording_value)

    def view_scores(self, views: TextViews) -> dict[str, F64]:
        out: dict[str, F64] = {}
        if self.content is not None and views.content.shape[1]:
            out[CONTENT] = self.content @ views.content.T
        if self.wording is not None and views.wording is not None:
            out[WORDING] = np.ascontiguousarray(
                np.asarray(views.wording @ self.wording, np.float64).T
            )
        return out

    def utility(self, views: TextViews) -> F64:
        total = self.style @ views.style.T
        for part in self.view_scores(views).values():
            total = total + part
        return np.asarray(total, dtype=np.float64)


class ExpertBank:
    """The params' experts as matrices, for scoring many texts at once.

    Two linear sets share the labels: the prediction experts score candidates; the
    identification experts (fitted with little regularisation, so that they recognise the
    histories they learnt from) give the likelihoods behind the posterior. Without
    identification experts the prediction experts do both.
    """

    def __init__(self, params: EmbeddedParams) -> None:
        content, wording = params.has_content, bool(params.idf_index.size)
        self.labels = [e.label for e in params.experts]
        self.predict = _Linear(params.experts, content, wording)
        self.identify = (
            _Linear(params.identifiers, content, wording) if params.identifiers else self.predict
        )
        self.style = self.predict.style
        self.calibration = params.calibration
        # (J,) whether each expert is a population one (the population prior applies to those)
        self.is_population = np.array([e.kind == "population" for e in params.experts])
        # Each dataset's own population expert, by dataset name (for per-population trust).
        self.populations = {
            e.label.split("/")[0]: j
            for j, e in enumerate(params.experts)
            if e.kind == "population" and "/" in e.label
        }
        # (M, C) unit centres of the populations' texts; `domain_of[m]`: centre m's population
        # (an index into `domains`).
        self.domains = [n for n in params.centroids if n in self.populations]
        width = params.content_dim if params.has_content else 0
        self.centroids = np.zeros((0, width))
        self.domain_of = np.zeros(0, np.int64)
        if self.domains and width:
            self.centroids = np.vstack([params.centroids[n] for n in self.domains]).astype(float)
            self.domain_of = np.concatenate(
                [np.full(len(params.centroids[n]), i) for i, n in enumerate(self.domains)]
            )

    def with_calibration(self, calibration: Calibration) -> ExpertBank:
        """The same experts under another calibration (no matrices are copied)."""
        other = copy.copy(self)
        other.calibration = calibration
        return other

    def view_scores(self, views: TextViews) -> dict[str, F64]:
        """Per prediction expert and text: (J, n) utility from the content and wording views
        (the wording part as the view builder kept it, when it did)."""
        if views.wording_scores is None or self.predict.wording is None:
            return self.predict.view_scores(views)
        out = self.predict.view_scores(replace(views, wording=None))
        out[WORDING] = np.ascontiguousarray(views.wording_scores.T)
        return out


@dataclass(frozen=True)
class History:
    """Pre-computed history evidence: pair differences and Gram matrices per view."""

    expert_margin: F64  # (J, k): each expert's log-odds that chosen beats rejected
    diff: dict[str, F64 | sp.csr_matrix]  # view -> (k, dim) chosen minus rejected
    gram: dict[str, F64]  # view -> (k, k)
    cross: dict[str, F64]  # view -> (n_texts, k): every text against every pair difference
    # calibration -> counts row -> its fit (`_fits`): shared by every History `replace` makes
    # from this one, so a prepared history keeps the rows its calls drew.
    fits: dict[Calibration, dict[bytes, RowFit]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def k(self) -> int:
        return int(self.expert_margin.shape[1])


def history_evidence(bank: ExpertBank, views: TextViews, scores: dict[str, F64], k: int) -> History:
    """Texts 0..k-1 are the chosen answers, k..2k-1 the rejected ones, the rest candidates."""
    chosen, rejected = slice(0, k), slice(k, 2 * k)
    if bank.identify is bank.predict:
        total = bank.style @ views.style.T + sum(
            scores.values(), np.zeros((len(bank.labels), len(views)))
        )
    else:
        total = bank.identify.utility(views.head(2 * k))
    margin = total[:, chosen] - total[:, rejected]
    matrices: dict[str, F64 | sp.csr_matrix] = {"style": views.style}
    if views.content.shape[1]:
        matrices[CONTENT] = views.content
    if views.wording is not None:
        matrices[WORDING] = views.wording
    diff, gram, cross = {}, {}, {}
    for view, matrix in matrices.items():
        if sp.issparse(matrix):
            matrix = compact(matrix)
        d = matrix[chosen] - matrix[rejected]
        diff[view] = d
        gram[view] = dense(d @ d.T)
        cross[view] = dense(matrix @ d.T)
    return History(expert_margin=margin, diff=diff, gram=gram, cross=cross)


@dataclass(frozen=True)
class PreparedHistory:
    """What a history alone determines (its 2k texts' views and scores, pair differences,
    Gram matrices), kept per persona so a returning user's call computes only what its
    candidates add: the same evidence as `history_evidence` over history and candidates."""

    views: TextViews  # the 2k history texts: chosen answers, then rejected ones
    scores: dict[str, F64]  # view -> (J, 2k) prediction scores
    evidence: History  # its cross covers the history texts only
    columns: npt.NDArray[np.int64] | None  # the wording columns the differences use

    def with_candidates(
        self, bank: ExpertBank, candidates: TextViews
    ) -> tuple[TextViews, dict[str, F64], History]:
        """(views, scores, evidence) over history then candidates. The views carry every
        text's style and content but no wording: inference reads the wording through the
        scores and the evidence."""
        extra = bank.view_scores(candidates)
        scores = {v: np.hstack([self.scores[v], extra[v]]) for v in extra}
        cross = dict(self.evidence.cross)
        for view, d in self.evidence.diff.items():
            if view == WORDING:
                assert candidates.wording is not None and self.columns is not None
                rows = on_columns(candidates.wording, self.columns)
            else:
                rows = candidates.style if view == "style" else candidates.content
            cross[view] = np.vstack([cross[view], rows @ dense(d).T])
        views = TextViews(
            style=np.vstack([self.views.style, candidates.style]),
            content=np.vstack([self.views.content, candidates.content]),
            wording=None,
        )
        return views, scores, replace(self.evidence, cross=cross)


def prepare_history(bank: ExpertBank, views: TextViews) -> PreparedHistory:
    """The evidence of a history whose texts are `views` (k chosen answers, k rejected)."""
    k = len(views) // 2
    scores = bank.view_scores(views)
    evidence = history_evidence(bank, views, scores, k)
    columns = None
    if views.wording is not None:
        columns = np.unique(sp.csr_matrix(views.wording).indices).astype(np.int64)
    return PreparedHistory(views, scores, evidence, columns)


@dataclass(frozen=True)
class UserModel:
    posterior: F64  # (J,) over experts
    individual_weight: float  # posterior mass of the user's own history model
    alpha: float  # scale of the history model
    style_coef: F64  # (S,) mixed style coefficients
    contributions: dict[str, F64]  # criterion key -> (n_texts,) utility contribution
    n_pairs: int
    named: tuple[str, ...] = ()  # style groups the user's own reasons name, most often first

    def top_expert(self) -> int:
        return int(np.argmax(self.posterior))


@dataclass(frozen=True)
class UserModels:
    """B user models at once (the Ind-N samples of one history), as arrays over samples."""

    posterior: F64  # (B, J)
    individual_weight: F64  # (B,)
    alpha: F64  # (B,)
    style_coef: F64  # (B, S)
    keys: tuple[str, ...]  # the criterion keys: style groups, then the scored views
    parts: F64  # (B, keys, n_texts): each key's utility contribution
    n_pairs: npt.NDArray[np.int64]  # (B,)
    named: tuple[str, ...] = ()

    def __len__(self) -> int:
        return int(self.parts.shape[0])

    def __getitem__(self, b: int) -> UserModel:
        return UserModel(
            posterior=self.posterior[b],
            individual_weight=float(self.individual_weight[b]),
            alpha=float(self.alpha[b]),
            style_coef=self.style_coef[b],
            contributions=dict(zip(self.keys, self.parts[b], strict=True)),
            n_pairs=int(self.n_pairs[b]),
            named=self.named,
        )


def infer(
    bank: ExpertBank,
    views: TextViews,
    scores: dict[str, F64],
    history: History,
    counts: npt.NDArray[np.int64],
    rng: np.random.Generator | None = None,
    emphasis: F64 | None = None,
) -> UserModels:
    """The user models for the history multisets `counts` (B, k): one row per sample, each a
    bootstrap resample or all ones. With `rng`, every sample but the first is one draw of the
    user's preference hypothesis around its posterior (the Ind-N variation). `emphasis`
    (feedback.emphasis of the user's reasons) raises the style groups they name."""
    c = counts.astype(np.float64)
    n_samples, n_experts = c.shape[0], len(bank.labels)
    cal = bank.calibration
    fit = fitted(bank, views, history, c)
    alpha, own, weights, directions = fit.alpha, fit.own, fit.weights, fit.directions
    if rng is not None and cal.posterior_concentration > 0 and n_samples > 1:
        if (own[1:] == own[1]).all():  # one size for all: the same draws in one call
            size = n_experts + 1 if own[1] else n_experts
            concentrated = cal.posterior_concentration * weights[1:, :size] + 1e-3
            weights[1:, :size] = dirichlet_rows(rng, concentrated)
        else:
            for b in range(1, n_samples):
                size = n_experts + 1 if own[b] else n_experts
                weights[b, :size] = rng.dirichlet(
                    cal.posterior_concentration * weights[b, :size] + 1e-3
                )
    posterior, w_ind = weights[:, :n_experts], weights[:, n_experts]
    step = (w_ind * alpha)[:, None]

    style_coef = posterior @ bank.style
    if "style" in directions:
        style_coef = style_coef + step * directions["style"]
    if emphasis is not None and cal.feedback_gain:
        style_coef = style_coef * (1.0 + cal.feedback_gain * (GROUP_MASK @ emphasis))
    # (B, groups, texts): each style group's part of every text's utility
    grouped = np.einsum("ts,bs,sg->bgt", views.style, style_coef, GROUP_MASK)
    parts = [grouped]
    for view, matrix in scores.items():
        part = posterior @ matrix
        if view in directions:
            part = part + step * directions[view]
        parts.append(part[:, None, :])
    named = ranked(emphasis) if emphasis is not None else ()
    return UserModels(
        posterior=posterior,
        individual_weight=w_ind,
        alpha=alpha,
        style_coef=style_coef,
        keys=(*_GROUP_INDEX, *scores),
        parts=np.concatenate(parts, axis=1),
        n_pairs=counts.sum(axis=1),
        named=named,
    )
