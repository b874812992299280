"""A returning user's prepared history gives exactly the evidence computed from scratch: the
backend keeps `PreparedHistory` per persona and adds only what the candidates bring."""

from __future__ import annotations

import numpy as np

from service.backends.embedded.params import load_params
from service.backends.embedded.usermodel import (
    ExpertBank,
    history_evidence,
    infer,
    prepare_history,
)
from service.backends.embedded.views import ViewBuilder
from service.core.embedder import Embedder
from tests.helpers import LONG, QA, SHORT


def test_prepared_history_with_candidates_equals_the_evidence_from_scratch(
    embedder: Embedder,
) -> None:
    params = load_params()
    bank = ExpertBank(params)
    builder = ViewBuilder(params, embedder)
    k = len(QA)
    prompts = [q for q, _, _ in QA] * 2 + ["How long should I steep green tea?"] * 2
    texts = [s for _, s, _ in QA] + [long for _, _, long in QA] + [LONG, SHORT]
    whole = builder.build(prompts, texts)
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
