"""The embedded critic's threshold still agrees with the hand-labelled pairs as its comment says
(counts, with a margin of one pair for a different CPU's rounding)."""

from __future__ import annotations

from service.backends.embedded.critic import SIMILARITY_THRESHOLD
from service.core.embedder import Embedder
from tests.critique.calibrate import HELDOUT, best, count, load_pairs, similarities, stances


def test_the_labelled_pairs_at_the_shipped_threshold(embedder: Embedder) -> None:
    pairs = load_pairs()
    assert len(pairs) >= 60 and sum(p.same for p in pairs) == 40
    sims, stance = similarities(embedder, pairs), stances(pairs)
    shipped = count(pairs, sims, stance, SIMILARITY_THRESHOLD)
    # the comment: 37 of 40 found, no false match (F1 0.961)
    assert shipped.tp >= 36 and shipped.fp <= 1, shipped.line()
    assert shipped.f1 >= 0.94, shipped.line()
    _, top = best(pairs, sims, stance)
    assert top.f1 - shipped.f1 <= 0.02  # still (about) the best threshold


def test_the_heldout_pairs_at_the_shipped_threshold(embedder: Embedder) -> None:
    pairs = load_pairs(HELDOUT)
    shipped = count(pairs, similarities(embedder, pairs), stances(pairs), SIMILARITY_THRESHOLD)
    # the comment: 10 of 15 found, no false match (F1 0.800)
    assert shipped.tp >= 9 and shipped.fp <= 1, shipped.line()


def test_the_stance_rule_refuses_every_other_target_and_opposite_polarity_pair() -> None:
    for pairs in (load_pairs(), load_pairs(HELDOUT)):
        refused = [p for p, ok in zip(pairs, stances(pairs), strict=True) if not ok]
        for pair in pairs:
            if pair.kind in ("other_target", "opposite_polarity"):
                assert pair in refused, pair
