"""Blending a persona's expert toward a population, and the trust pick held to the served score."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from service.backends.embedded.params import Expert
from service.offline.embedded_training import blending
from service.offline.embedded_training.calibration import _pick, _Result

WORDS = 6


def _expert(label: str, kind: str, style: list[float], words: dict[int, float]) -> Expert:
    index = np.array(sorted(words), np.int64)
    return Expert(
        label=label,
        kind=kind,
        n_pairs=10,
        style=np.array(style, np.float32),
        content=np.zeros(0, np.float32),
        wording_index=index,
        wording_value=np.array([words[i] for i in index], np.float32),
    )


def _corpus(style: npt.NDArray[np.float64], wording: npt.NDArray[np.float64]) -> SimpleNamespace:
    """The one method `blending` reads: chosen-minus-rejected features of the given rows."""

    def diff(index: npt.NDArray[np.int64]) -> tuple[object, ...]:
        return style[index], np.zeros((index.size, 0)), sp.csr_matrix(wording[index])

    return SimpleNamespace(diff=diff)


def _rows(rng: np.random.Generator, n: int, truth: int) -> npt.NDArray[np.float64]:
    """Style diffs whose chosen side is higher on feature `truth`; the other is noise."""
    x = rng.normal(size=(n, 2))
    x[:, truth] = np.abs(x[:, truth]) + 0.1
    return x


def test_a_persona_whose_own_expert_misorders_its_new_pairs_is_shrunk_to_the_population() -> None:
    rng = np.random.default_rng(0)
    style = np.vstack([_rows(rng, 200, truth=0), _rows(rng, 200, truth=1)])
    corpus = _corpus(style, np.zeros((400, WORDS)))
    experts = (
        _expert("population", "population", [2.0, 0.0], {}),
        _expert("d/population", "population", [1.0, 0.0], {}),
        _expert("d/wrong", "user", [0.0, 2.0], {}),  # learnt noise: orders by feature 1
        _expert("d/right", "user", [0.0, 2.0], {}),  # its user does choose by feature 1
    )
    members = {"d/wrong": np.arange(200), "d/right": np.arange(200, 400)}
    choices, report = blending.choose(corpus, experts, members)
    assert choices["d/wrong"][1] == 1.0  # all the way: its own expert is no better than noise
    assert choices["d/wrong"][0] in {"population", "d/population"}
    assert "d/right" not in choices  # its own expert wins: kept as it is
    assert report["d/right"]["weight"] == 0.0
    assert report["d/wrong"]["mean_loglik_chosen"] > report["d/wrong"]["mean_loglik_own"]


def test_a_blend_scores_as_the_blend_of_the_two_experts_margins() -> None:
    rng = np.random.default_rng(1)
    corpus = _corpus(rng.normal(size=(50, 2)), rng.normal(size=(50, WORDS)))
    own = _expert("d/u", "user", [1.0, -0.5], {0: 0.4, 3: -1.0})
    pop = _expert("population", "population", [0.2, 0.3], {3: 0.5, 5: 2.0})
    (mixed, unchanged) = blending.apply((own, pop), {"d/u": ("population", 0.25)})
    rows = np.arange(50)
    expected = 0.75 * blending.margins(corpus, rows, own) + 0.25 * blending.margins(
        corpus, rows, pop
    )
    np.testing.assert_allclose(blending.margins(corpus, rows, mixed), expected, rtol=1e-5)
    assert mixed.wording_index.tolist() == [0, 3, 5]  # the union, zeros dropped
    assert unchanged is pop  # a population is never blended


def test_clusters_share_their_datasets_choice() -> None:
    pop = _expert("ukp/population", "population", [1.0, 0.0], {})
    clusters = tuple(_expert(f"ukp/c{i}", "cluster", [0.0, 1.0], {}) for i in range(3))
    assert {blending.blend_key(c) for c in clusters} == {"ukp/clusters"}
    out = blending.apply((pop, *clusters), {"ukp/clusters": ("ukp/population", 1.0)})
    assert all(np.allclose(c.style, pop.style) for c in out[1:])
    assert [c.label for c in out] == [pop.label, *(c.label for c in clusters)]


def _result(prior: float, accuracy: float) -> _Result:
    return _Result(
        values=(prior,),
        with_history={"d": accuracy},
        without={"d": 0.6},
        costs={("d", 3): 0.0},  # against its own no-history score, not the served one
        by_size={("d", 3): accuracy},
    )


def test_a_bands_trust_is_held_to_the_no_history_score_actually_served() -> None:
    # The served no-history accuracy on these rows is 0.60. A candidate that costs nothing
    # against its own (lower) prior's no-history score still loses 0.02 against what is served.
    served = {("d", 3): 0.60}
    cheap_prior, sound = _result(-2.0, 0.58), _result(4.0, 0.598)
    assert _pick([cheap_prior, sound], "d", (3,), served) is sound
    better = _result(2.0, 0.63)
    assert _pick([cheap_prior, sound, better], "d", (3,), served) is better
    # None is safe: the one that costs least.
    assert _pick([cheap_prior], "d", (3,), {("d", 3): 0.7}) is cheap_prior
