"""A returning user's prepared history gives exactly the evidence computed from scratch: the
backend keeps `PreparedHistory` per persona and adds only what the candidates bring."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import numpy.typing as npt

from service.backends.embedded._fits import FIT_ROWS
from service.backends.embedded.params import load_params
from service.backends.embedded.usermodel import (
    ExpertBank,
    History,
    UserModels,
    history_evidence,
    infer,
    prepare_history,
)
from service.backends.embedded.views import TextViews, ViewBuilder
from service.core.embedder import Embedder
from tests.helpers import LONG, QA, SHORT


def _history_then_candidates(embedder: Embedder) -> tuple[ExpertBank, TextViews]:
    """The bank and the views of QA's chosen answers, its rejected ones, then two candidates."""
    params = load_params()
    prompts = [q for q, _, _ in QA] * 2 + ["How long should I steep green tea?"] * 2
    texts = [s for _, s, _ in QA] + [long for _, _, long in QA] + [LONG, SHORT]
    return ExpertBank(params), ViewBuilder(params, embedder).build(prompts, texts)


def test_prepared_history_with_candidates_equals_the_evidence_from_scratch(
    embedder: Embedder,
) -> None:
    bank, whole = _history_then_candidates(embedder)
    k = len(QA)
    scores = bank.view_scores(whole)
    expected = history_evidence(bank, whole, scores, k)

    prepared = prepare_history(bank, whole.head(2 * k))
    views, got_scores, got = prepared.with_candidates(bank, whole.tail(2 * k))

    np.testing.assert_allclose(views.style, whole.style)
    assert set(got_scores) == set(scores)
    for view in scores:
        np.testing.assert_allclose(got_scores[view], scores[view], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got.expert_margin, expected.expert_margin, rtol=1e-6, atol=1e-9)
    for view in expected.cross:
        np.testing.assert_allclose(got.gram[view], expected.gram[view], rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(got.cross[view], expected.cross[view], rtol=1e-6, atol=1e-9)
    # And so the same user model.
    counts = np.ones((1, k), np.int64)
    a = infer(bank, whole, scores, expected, counts)[0]
    b = infer(bank, views, got_scores, got, counts)[0]
    np.testing.assert_allclose(a.posterior, b.posterior, rtol=1e-6, atol=1e-9)
    for key in a.contributions:
        np.testing.assert_allclose(a.contributions[key], b.contributions[key], atol=1e-9)


def test_a_returning_users_kept_row_fits_give_the_models_a_fresh_fit_gives(
    embedder: Embedder,
) -> None:
    """`infer` keeps each counts row's fit with the history: a later call that draws the same
    rows (in any order, among others) builds the very same models as fitting from scratch, and
    a history keeps at most FIT_ROWS rows per calibration."""
    bank, whole = _history_then_candidates(embedder)
    k = len(QA)
    prepared = prepare_history(bank, whole.head(2 * k))
    views, scores, evidence = prepared.with_candidates(bank, whole.tail(2 * k))
    drop_one = np.ones((k + 1, k), np.int64)
    drop_one[np.arange(1, k + 1), np.arange(k)] = 0

    def models(history: History, counts: npt.NDArray[np.int64]) -> UserModels:
        return infer(bank, views, scores, history, counts, np.random.default_rng(7))

    first = models(evidence, drop_one)
    assert len(evidence.fits[bank.calibration]) == k + 1
    again = drop_one[[3, 0, 0, 2, 1]]
    kept = models(evidence, again)
    fresh = models(replace(evidence, fits={}), again)
    for name in ("posterior", "individual_weight", "alpha", "style_coef", "parts"):
        np.testing.assert_array_equal(getattr(kept, name), getattr(fresh, name))
    np.testing.assert_array_equal(first.alpha[[3, 0, 0, 2, 1]], kept.alpha)
    assert len(evidence.fits[bank.calibration]) == k + 1  # nothing new to keep

    bootstrap = np.random.default_rng(0).multinomial(k, [1 / k] * k, size=FIT_ROWS * 3)
    for rows in np.array_split(bootstrap, 12):
        models(evidence, rows)
    assert len(evidence.fits[bank.calibration]) <= FIT_ROWS
