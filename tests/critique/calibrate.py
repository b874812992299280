"""Calibrate the embedded critic's similarity threshold on the hand-labelled argument pairs.

    .venv/bin/python -m tests.critique.calibrate

`labelled_pairs.jsonl` holds short argument sentences in pairs, written by hand for this
purpose (ukp_convarg-style debate critiques and assistant-answer critiques): `same` is 1 when
both state the same argument (same point, same response, same praise or criticism), else 0;
`kind` says why not (`different_point`, `other_target`, `opposite_polarity`). A pair is
predicted the same when the matcher would pair it: each sentence read as one claim
(`arguments.read_claim`), same stance, cosine of the cores >= threshold. The threshold with the
best F1 wins (ties: the best agreement, then the lowest threshold); two-fold cross-validation
(pick on even rows, count on odd, and back) says how much of that is fitted to the set.

`heldout_pairs.jsonl` (32 pairs) was written after the lexicon and the threshold were fixed
and is only ever counted, never tuned on: the honest estimate of the matcher's agreement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from service.backends.embedded.arguments import read_claim
from service.backends.embedded.critic import SIMILARITY_THRESHOLD, cosine
from service.core.embedder import Embedder
from service.engine.critique import same_stance

PAIRS = Path(__file__).with_name("labelled_pairs.jsonl")
HELDOUT = Path(__file__).with_name("heldout_pairs.jsonl")
GRID = tuple(round(0.30 + 0.01 * i, 2) for i in range(61))  # 0.30 .. 0.90


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool
    kind: str
    domain: str


@dataclass(frozen=True)
class Counts:
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def agreement(self) -> float:
        return (self.tp + self.tn) / (self.tp + self.fp + self.fn + self.tn)

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn
        )

    def line(self) -> str:
        return (
            f"TP {self.tp} FP {self.fp} FN {self.fn} TN {self.tn}: precision "
            f"{self.precision:.3f}, recall {self.recall:.3f}, F1 {self.f1:.3f}, agreement "
            f"{self.agreement:.3f}"
        )


def load_pairs(path: Path = PAIRS) -> list[Pair]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [Pair(r["a"], r["b"], bool(r["same"]), r["kind"], r["domain"]) for r in rows]


def similarities(embedder: Embedder, pairs: list[Pair]) -> npt.NDArray[np.float64]:
    matrix = cosine(embedder, [p.a for p in pairs], [p.b for p in pairs])
    return np.asarray(np.diag(matrix), dtype=np.float64)


def stances(pairs: list[Pair]) -> list[bool]:
    """Whether the matcher's stance rule lets each pair match (no context: names only)."""
    out = []
    for p in pairs:
        a, b = read_claim(p.a), read_claim(p.b)
        out.append(a is not None and b is not None and same_stance(a, b))
    return out


def count(
    pairs: list[Pair], sims: npt.NDArray[np.float64], stance: list[bool], threshold: float
) -> Counts:
    tp = fp = fn = tn = 0
    for pair, sim, ok in zip(pairs, sims, stance, strict=True):
        predicted = bool(ok and sim >= threshold)
        tp += predicted and pair.same
        fp += predicted and not pair.same
        fn += not predicted and pair.same
        tn += not predicted and not pair.same
    return Counts(tp, fp, fn, tn)


def best(
    pairs: list[Pair], sims: npt.NDArray[np.float64], stance: list[bool]
) -> tuple[float, Counts]:
    scored = [(count(pairs, sims, stance, t), t) for t in GRID]
    counts, threshold = max(scored, key=lambda s: (s[0].f1, s[0].agreement, -s[1]))
    return threshold, counts


def two_fold(pairs: list[Pair], sims: npt.NDArray[np.float64], stance: list[bool]) -> Counts:
    """Pick on one half, count on the other, both ways: an out-of-sample estimate."""
    total = Counts(0, 0, 0, 0)
    for fit in (0, 1):
        train = [i for i in range(len(pairs)) if i % 2 == fit]
        test = [i for i in range(len(pairs)) if i % 2 != fit]
        threshold, _ = best([pairs[i] for i in train], sims[train], [stance[i] for i in train])
        total += count([pairs[i] for i in test], sims[test], [stance[i] for i in test], threshold)
    return total


def main() -> None:
    from service.core.config import Settings
    from service.core.embedder import load_embedder

    settings = Settings()
    embedder = load_embedder(
        max_seq_length=settings.embedder_max_seq_length,
        runtime=settings.embedder_runtime,
        onnx_dir=settings.embedder_onnx_dir,
    )
    pairs = load_pairs()
    sims, stance = similarities(embedder, pairs), stances(pairs)
    print(f"{len(pairs)} pairs, {sum(p.same for p in pairs)} the same argument")
    for t in GRID[::5]:
        print(f"  {t:.2f}  {count(pairs, sims, stance, t).line()}")
    threshold, counts = best(pairs, sims, stance)
    print(f"best threshold {threshold:.2f}: {counts.line()}")
    print(f"two-fold cross-validated: {two_fold(pairs, sims, stance).line()}")
    held = load_pairs(HELDOUT)
    held_sims, held_stance = similarities(embedder, held), stances(held)
    shipped = count(held, held_sims, held_stance, SIMILARITY_THRESHOLD)
    print(f"held-out ({len(held)} pairs) at {SIMILARITY_THRESHOLD}: {shipped.line()}")
    print("wrong on the labelled set at the shipped threshold:")
    for p, sim, ok in zip(pairs, sims, stance, strict=True):
        if p.same != bool(ok and sim >= SIMILARITY_THRESHOLD):
            print(f"  cos {sim:.2f} stance {'ok' if ok else 'refused'} [{p.kind}] {p.a} | {p.b}")


if __name__ == "__main__":
    main()
