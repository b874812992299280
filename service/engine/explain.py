"""What decided a chain's verdict: which criteria separate the candidates, and a one-line `why`.

Computed from the chain alone (criterion weights and per-candidate scores), so the embedded
backend and an LLM judge get the same fields. A criterion whose scores are (nearly) the same for
every candidate explains nothing about the ranking, however heavy: it is marked, not led with.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.core.chain import EvaluationChain
from service.engine.render import fmt

# Scores are written to one decimal: half a point apart is the least difference worth naming.
SEPARATION = 0.5


@dataclass(frozen=True)
class Explanation:
    separates: tuple[bool | None, ...]  # per criterion (chain order); None: one candidate only
    why: tuple[str, ...]  # per candidate (chain order)


def explain(chain: EvaluationChain) -> Explanation:
    n = len(chain.candidates)
    table = _scores(chain)
    separates: list[bool | None] = []
    for c in chain.criteria:
        column = [row.get(c.name) for row in table]
        known = [s for s in column if s is not None]
        separates.append(
            None if n < 2 else len(known) >= 2 and max(known) - min(known) >= SEPARATION
        )
    return Explanation(tuple(separates), tuple(_why(chain, table, i) for i in range(n)))


def weighted_by_key(chain: EvaluationChain) -> list[dict[str, float]]:
    """Per candidate (chain order): criterion key -> weight x score / 100, summed over the
    criteria sharing a key. Their sum is the candidate's overall, so the difference of two
    candidates' maps says which dimensions their overall difference comes from."""
    keys = {c.name: (c.key, c.weight) for c in chain.criteria}
    out: list[dict[str, float]] = []
    for candidate in chain.candidates:
        row: dict[str, float] = {}
        for s in candidate.scores:
            key, weight = keys.get(s.criterion, (s.key, 0.0))
            row[key] = row.get(key, 0.0) + weight * s.score / 100.0
        out.append(row)
    return out


def _scores(chain: EvaluationChain) -> list[dict[str, float]]:
    return [{s.criterion: s.score for s in c.scores} for c in chain.candidates]


def _why(chain: EvaluationChain, table: list[dict[str, float]], i: int) -> str:
    n = len(chain.candidates)
    mine = chain.candidates[i].overall
    if n < 2:
        return _alone(chain, table[0])
    others = [c.overall for j, c in enumerate(chain.candidates) if j != i]
    rank = 1 + sum(o > mine + 1e-9 for o in others)
    level = all(abs(o - mine) < 0.05 for o in others)
    # Each criterion's weighted pull on this candidate against the others' mean score.
    pulls: list[tuple[float, str, float, float]] = []
    for c in chain.criteria:
        own = table[i].get(c.name)
        rest = [row[c.name] for j, row in enumerate(table) if j != i and c.name in row]
        if own is None or not rest:
            continue
        mean = sum(rest) / len(rest)
        pulls.append((c.weight * (own - mean) / 100.0, c.name, own, mean))
    decisive = [p for p in pulls if abs(p[2] - p[3]) >= SEPARATION]
    if level or not decisive:
        return f"Level with the other {_others(n)}: no criterion separates them."
    best = rank == 1
    pull, name, own, mean = max(decisive, key=lambda p: p[0]) if best else min(decisive)
    if (best and pull <= 0) or (not best and pull >= 0):
        pull, name, own, mean = max(decisive, key=lambda p: abs(p[0]))
    verb = "mainly on" if best else "held back mainly by"
    return (
        f"Ranked {rank} of {n}, {verb} {name} ({fmt(own)} against {fmt(mean)} for the "
        f"other {_others(n)})."
    )


def _alone(chain: EvaluationChain, row: dict[str, float]) -> str:
    scored = [(row[c.name], c.name) for c in chain.criteria if c.name in row]
    if not scored:
        return "The only candidate; no criterion scored it."
    high, low = max(scored), min(scored)
    if high[0] - low[0] < SEPARATION:
        return f"The only candidate: even across the rubric ({fmt(high[0])})."
    return (
        f"The only candidate: strongest on {high[1]} ({fmt(high[0])}), "
        f"weakest on {low[1]} ({fmt(low[0])})."
    )


def _others(n: int) -> str:
    return "candidate" if n == 2 else "candidates"
