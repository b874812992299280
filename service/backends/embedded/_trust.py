"""How far a history moves a user from the population: the posterior over the experts and
the user's own history model, under each population's calibrated trust.

A population's trust (population prior, own-model prior, temperature; per band of history
sizes) was calibrated on its own users' held-out rows. A history takes the trust of the
population whose texts its own are most like (nearest centres of each dataset's texts), and
with no centres the mix of the populations' trusts weighted by how well each explains it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from service.backends.embedded.usermodel import ExpertBank
    from service.backends.embedded.views import TextViews

F64 = npt.NDArray[np.float64]


def domain_shares(bank: ExpertBank, views: TextViews, c: F64) -> F64 | None:
    """(B, P): per sample, 1 for the population (`bank.domains` order) whose texts most of its
    history's texts are nearest (a tie shares evenly); None without centroids, content
    vectors or a history. A majority, not the fraction: a single answer lands nearest another
    dataset's texts often enough (one in five of hh_rlhf_relabeled's) to leak its trust."""
    k = c.shape[1]
    if not k or not bank.domains or bank.centroids.shape[1] != views.content.shape[1]:
        return None
    nearest = bank.domain_of[np.argmax(views.content[: 2 * k] @ bank.centroids.T, axis=1)]
    votes = np.zeros((2 * k, len(bank.domains)))
    votes[np.arange(2 * k), nearest] = 1.0
    counted = c @ (votes[:k] + votes[k:])  # (B, P): each drawn pair's two answers
    top = counted >= counted.max(axis=1, keepdims=True) - 1e-9
    return np.asarray(top / top.sum(axis=1, keepdims=True), dtype=np.float64)


def mixed_posterior(
    bank: ExpertBank,
    ll: F64 | None,
    ll_ind: F64,
    own: npt.NDArray[np.bool_],
    pairs: int,
    domains: F64 | None = None,
) -> F64:
    """(B, J + 1): the posterior over the experts and, last, the user's own history model,
    for a history of `pairs` pairs.

    With per-population calibrations it is the mix of the posteriors under each population's
    own trust, weighted by how well that population explains the history. Mixing posteriors,
    not the trust values: a temperature multiplies every log-likelihood, so a crowd history
    that reads 10% like a sharply trusted population's would otherwise be trusted sharply as a
    whole, where here only a tenth of its posterior is."""
    n_samples = ll_ind.shape[0]
    evidence = ll if ll is not None else np.zeros((n_samples, len(bank.labels)))
    weights = np.zeros((n_samples, len(bank.labels) + 1))
    for share, trust in trusts(bank, ll, n_samples, pairs, domains):
        if not share.any():  # a population no sample's history is about (shares by text)
            continue
        population_bias, individual_bias, temperature = trust
        bias = np.where(bank.is_population, population_bias, 0.0)
        own_logit = np.where(own, temperature * ll_ind + individual_bias, -np.inf)
        logits = np.column_stack([temperature * evidence + bias, own_logit])
        part = np.exp(logits - logits.max(axis=1, keepdims=True))
        weights += share[:, None] * part / part.sum(axis=1, keepdims=True)
    return weights


def trusts(
    bank: ExpertBank,
    ll: F64 | None,
    n_samples: int,
    pairs: int,
    domains: F64 | None = None,
) -> list[tuple[F64, tuple[float, float, float]]]:
    """Per population calibration, (each sample's share, (population bias, individual bias,
    temperature)) for histories of `pairs` pairs: each population's entry is its one for the
    largest size up to `pairs` (none: the bank's own). The shares are `domains` (which
    population's texts the history's texts are nearest, `domain_shares`) where every population
    with an entry has a centroid; else the posterior over the populations under these (B, J)
    expert log-likelihoods (flat prior, temperature 1), which also answers to how well a
    population predicts a few choices, so a crowd's history could take a persona set's sharper
    trust. Without a history or per-population calibrations, the bank's own calibration with
    share 1."""
    cal = bank.calibration
    default = (-1, (cal.population_bias, cal.individual_bias, cal.temperature))
    entries: dict[str, tuple[int, tuple[float, float, float]]] = {}
    for name, least, *values in cal.by_population:
        if name in bank.populations:
            best = entries.setdefault(name, default)
            if best[0] < least <= pairs:
                entries[name] = (least, (values[0], values[1], values[2]))
    if ll is None or not entries:
        return [(np.ones(n_samples), default[1])]
    if domains is not None and set(entries) <= set(bank.domains):
        share = domains[:, [bank.domains.index(n) for n in entries]]
        share = np.where(share.sum(axis=1, keepdims=True) > 0, share, 1.0)  # none: evenly
        share = share / share.sum(axis=1, keepdims=True)
    else:
        fit = ll[:, [bank.populations[n] for n in entries]]
        share = np.exp(fit - fit.max(axis=1, keepdims=True))
        share /= share.sum(axis=1, keepdims=True)
    return [(share[:, i], values) for i, (_, values) in enumerate(entries.values())]
