"""Parameters of the embedded backend: a learnt library of preference experts, or a prior.

A learnt file (`pgenrm train-embedded`, from training rows only) holds the feature
standardisation, the wording idf, one linear expert per training user (or user cluster) plus a
population expert, and the calibration of how far to trust a short history. Without a file the
backend runs on a hand-set population prior over the style features alone.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.backends.embedded.features import STYLE_FEATURES

PARAMS_FORMAT = 2
DEFAULT_PARAMS_PATH = Path(__file__).with_name("data") / "params.npz"
F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

log = logging.getLogger("pgenrm.embedded")


class ParamsError(ValueError):
    """The parameter file is missing, corrupt, or does not fit the configured embedder."""


@dataclass(frozen=True)
class Expert:
    """A linear utility over [style z ; content ; wording], already scaled to log-odds."""

    label: str
    kind: str  # "user", "cluster" or "population"
    n_pairs: int
    style: F32
    content: F32  # empty when the expert has no content view
    wording_index: I64
    wording_value: F32
    regularisation: tuple[float, ...] = ()  # the C chosen per view (style, content, wording)


@dataclass(frozen=True)
class Calibration:
    population_bias: float = -2.0  # prior log-odds of the population expert vs one library expert
    individual_bias: float = 0.0  # prior log-odds of the user's own history model
    individual_alphas: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
    temperature: float = 1.0  # sharpness of the posterior over experts
    feedback_gain: float = 0.0  # how much the criteria a user's reasons name gain (feedback.py)
    posterior_concentration: float = 20.0  # Dirichlet spread of Ind-N samples around it
    resample: str = "drop-one"  # Ind-N history variation: "drop-one", "bootstrap" or "none"
    score_slope: float = 1.5  # criterion score = 5.5 + slope * standardised contribution
    weight_jitter: float = 200.0  # Dirichlet concentration of per-sample weight variation
    min_weight: float = 1.0  # criteria under this % are left out of the chain
    max_criteria: int = 10
    # Per population ("<dataset>" of a "<dataset>/population" expert) and history size: its
    # own (dataset, fewest pairs, population bias, individual bias, temperature); a history of
    # k pairs takes each population's entry with the most "fewest pairs" <= k. A history is
    # weighed with the mix of them its populations' posterior gives (usermodel.infer): a crowd
    # whose members agree can keep the population's scores while personas that differ are
    # personalised, and a single pair can be trusted less than eight. Empty: one for all.
    by_population: tuple[tuple[str, int, float, float, float], ...] = ()


# A hand-set prior for when no learnt file exists: complete, structured, specific, relevant answers.
_PRIOR = {
    "log_words": 0.5,
    "layout": 0.2,
    "examples": 0.15,
    "digits": 0.1,
    "prompt_overlap": 0.3,
    "refusals": -0.1,
    "harm_terms": -0.2,
}
# Feature means and spreads measured on the dsp + hh_rlhf_relabeled training rows (rounded).
_PRIOR_STATS = {
    "log_words": (3.6, 1.07),
    "log_sentences": (1.33, 0.64),
    "layout": (0.15, 0.53),
    "formality": (0.72, 3.44),
    "questions": (0.16, 0.32),
    "second_person": (3.36, 3.93),
    "opens_with_question": (0.12, 0.33),
    "hedges": (0.33, 0.6),
    "refusals": (0.04, 0.16),
    "refusal_opening": (0.03, 0.18),
    "safety_terms": (0.07, 0.29),
    "moralising": (0.02, 0.15),
    "compliant_opening": (0.12, 0.32),
    "instructions": (0.03, 0.16),
    "harm_terms": (0.09, 0.35),
    "echoes_prompt_harm": (0.02, 0.13),
    "examples": (0.11, 0.3),
    "digits": (0.32, 0.77),
    "vocabulary": (0.8, 0.16),
    "empathy": (0.13, 0.4),
    "exclamations": (0.35, 1.22),
    "first_person": (2.33, 3.53),
    "prompt_overlap": (0.38, 0.28),
}


@dataclass(frozen=True)
class EmbeddedParams:
    version: str
    style_mean: F32
    style_std: F32
    idf_index: I64
    idf_value: F32
    experts: tuple[Expert, ...]
    calibration: Calibration = Calibration()
    identifiers: tuple[Expert, ...] = ()  # same labels, lightly regularised: for the posterior
    embedder: str | None = None  # None: the content view is unused
    content_dim: int = 0
    # What the content view embeds per answer, in order: "qa" (the answer in its question),
    # "answer" (the answer alone). Each costs one embedding per text.
    content_views: tuple[str, ...] = ("qa", "answer")
    manifest: dict[str, Any] = field(default_factory=dict)
    # Per dataset population: (K, C) unit centres of its training texts' content vectors. A
    # history takes the trust of the population most of its texts are nearest (_trust): what
    # a history is about, not how well a population happens to predict its few choices.
    # Empty (older files): by the populations' likelihoods.
    centroids: dict[str, F32] = field(default_factory=dict)

    @property
    def has_content(self) -> bool:
        return self.content_dim > 0 and any(e.content.size for e in self.experts)

    def check_embedder(self, name: str, dim: int, fingerprint: str | None = None) -> None:
        """Refuse an embedder of another model or size; warn if the same model computes its
        vectors another way (runtime, tokens, precision) than the params learnt from, which
        is allowed (the float32 path stays selectable) but moves the scores a little."""
        learnt = self.manifest.get("embedder_fingerprint")
        if self.has_content and fingerprint and learnt and learnt != fingerprint:
            log.warning(
                "embedded params %s were learnt on %s vectors; the service computes %s: scores "
                "move slightly (retrain with `pgenrm train-embedded` to match)",
                self.version,
                learnt,
                fingerprint,
            )
        views = len(self.content_views)
        if self.has_content and (self.embedder != name or self.content_dim != views * dim):
            raise ParamsError(
                f"embedded params {self.version} were learnt with embedder {self.embedder!r} "
                f"({self.content_dim // views}-d) but the service uses {name!r} ({dim}-d): set "
                "PGENRM_EMBEDDER to match, or retrain with `pgenrm train-embedded`"
            )

    def save(self, path: Path) -> None:
        if self.identifiers and len(self.identifiers) != len(self.experts):
            raise ParamsError("identifiers must pair one to one with experts")
        manifest = {
            **self.manifest,
            "format": PARAMS_FORMAT,
            "version": self.version,
            "embedder": self.embedder,
            "content_dim": self.content_dim,
            "content_views": list(self.content_views),
            "style_features": list(STYLE_FEATURES),
            "centroids": [[name, len(c)] for name, c in self.centroids.items()],
            "calibration": {**self.calibration.__dict__},
            "experts": [
                {
                    "label": e.label,
                    "kind": e.kind,
                    "n_pairs": e.n_pairs,
                    "c": list(e.regularisation),
                }
                for e in self.experts
            ],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            np.savez_compressed(
                handle,
                manifest=np.array(json.dumps(manifest)),
                style_mean=self.style_mean,
                style_std=self.style_std,
                idf_index=self.idf_index.astype(np.int32),
                idf_value=self.idf_value.astype(np.float16),
                **_expert_arrays("expert_", self.experts, self.content_dim),
                **_expert_arrays("id_", self.identifiers, self.content_dim),
                **_centroid_arrays(self.centroids),
            )


def _centroid_arrays(centroids: dict[str, F32]) -> dict[str, Any]:
    if not centroids:
        return {}
    return {"centroids": np.vstack(list(centroids.values())).astype(np.float32)}


def _expert_arrays(prefix: str, experts: tuple[Expert, ...], dim: int) -> dict[str, Any]:
    if not experts:
        return {}
    offsets = np.cumsum([0, *(e.wording_index.size for e in experts)])
    return {
        f"{prefix}style": np.stack([e.style for e in experts]).astype(np.float32),
        f"{prefix}content": np.stack([_content(e, dim) for e in experts]),
        f"{prefix}wording_offsets": offsets.astype(np.int64),
        f"{prefix}wording_index": np.concatenate([e.wording_index for e in experts]).astype(
            np.int32
        ),
        f"{prefix}wording_value": np.concatenate([e.wording_value for e in experts]).astype(
            np.float16
        ),
    }


def _read_experts(
    prefix: str, arrays: dict[str, Any], metas: list[dict[str, Any]]
) -> tuple[Expert, ...]:
    if f"{prefix}style" not in arrays:
        return ()
    offsets = arrays[f"{prefix}wording_offsets"]
    return tuple(
        Expert(
            label=meta["label"],
            kind=meta["kind"],
            n_pairs=int(meta["n_pairs"]),
            style=arrays[f"{prefix}style"][j].astype(np.float32),
            content=arrays[f"{prefix}content"][j].astype(np.float32),
            wording_index=arrays[f"{prefix}wording_index"][offsets[j] : offsets[j + 1]].astype(
                np.int64
            ),
            wording_value=arrays[f"{prefix}wording_value"][offsets[j] : offsets[j + 1]].astype(
                np.float32
            ),
            regularisation=tuple(meta.get("c", ())),
        )
        for j, meta in enumerate(metas)
    )


def _content(expert: Expert, dim: int) -> F32:
    return expert.content.astype(np.float32) if expert.content.size else np.zeros(dim, np.float32)


def prior_params() -> EmbeddedParams:
    """The built-in population prior: style features only, hand-set."""
    style = np.array([_PRIOR.get(f, 0.0) for f in STYLE_FEATURES], np.float32)
    population = Expert(
        "population",
        "population",
        0,
        style,
        np.zeros(0, np.float32),
        np.zeros(0, np.int64),
        np.zeros(0, np.float32),
    )
    return EmbeddedParams(
        version="builtin-prior-2",
        style_mean=np.array([_PRIOR_STATS[f][0] for f in STYLE_FEATURES], np.float32),
        style_std=np.array([_PRIOR_STATS[f][1] for f in STYLE_FEATURES], np.float32),
        idf_index=np.zeros(0, np.int64),
        idf_value=np.zeros(0, np.float32),
        experts=(population,),
        calibration=Calibration(population_bias=0.0),
    )


def load_params(path: Path | None = None) -> EmbeddedParams:
    """The learnt file at `path` (or the packaged one) if present, else the built-in prior."""
    target = path or DEFAULT_PARAMS_PATH
    if not target.exists():
        if path is not None:
            raise ParamsError(f"embedded params file not found: {path}")
        return prior_params()
    try:
        with np.load(target, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        manifest = json.loads(str(arrays["manifest"]))
    except (OSError, ValueError, KeyError) as error:
        raise ParamsError(f"{target}: not an embedded params file: {error}") from error
    if manifest.get("format") != PARAMS_FORMAT:
        raise ParamsError(f"{target}: params format {manifest.get('format')}, need {PARAMS_FORMAT}")
    if manifest.get("style_features") != list(STYLE_FEATURES):
        raise ParamsError(f"{target}: learnt for other style features; retrain it")
    try:
        experts = _read_experts("expert_", arrays, manifest["experts"])
        identifiers = _read_experts("id_", arrays, manifest["experts"])
    except (KeyError, IndexError, ValueError) as error:
        raise ParamsError(f"{target}: incomplete embedded params file: {error!r}") from error
    stored: dict[str, Any] = dict(manifest["calibration"])
    stored["individual_alphas"] = tuple(stored.get("individual_alphas", ()))
    # Files from before history sizes had 4 values per population: one entry for every size.
    stored["by_population"] = tuple(
        (str(e[0]), int(e[1]) if len(e) == 5 else 1, *(float(v) for v in e[-3:]))
        for e in stored.get("by_population", ())
    )
    calibration = Calibration(**stored)
    counts = [(str(name), int(n)) for name, n in manifest.get("centroids", [])]
    stacked = arrays.get("centroids", np.zeros((0, 0), np.float32))
    if sum(n for _, n in counts) != len(stacked):
        raise ParamsError(f"{target}: centroid counts {counts} for {len(stacked)} centroids")
    ends = np.cumsum([0, *(n for _, n in counts)])
    centroids = {
        name: stacked[ends[i] : ends[i + 1]].astype(np.float32)
        for i, (name, _) in enumerate(counts)
    }
    return EmbeddedParams(
        version=manifest["version"],
        style_mean=arrays["style_mean"].astype(np.float32),
        style_std=arrays["style_std"].astype(np.float32),
        idf_index=arrays["idf_index"].astype(np.int64),
        idf_value=arrays["idf_value"].astype(np.float32),
        experts=experts,
        calibration=calibration,
        identifiers=identifiers,
        embedder=manifest["embedder"],
        content_dim=int(manifest["content_dim"]),
        content_views=tuple(manifest.get("content_views", ("qa", "answer"))),
        manifest=manifest,
        centroids=centroids,
    )


def with_calibration(params: EmbeddedParams, **changes: Any) -> EmbeddedParams:
    return replace(params, calibration=replace(params.calibration, **changes))
