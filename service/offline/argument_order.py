"""Recover ukp_convarg's original A1/A2 order, which its workers' `feedback` refers to.

A row stores the pair as chosen/rejected, but `conversation_id` is `ukp-<a1>_<a2>-<worker>`: the
argument ids in their original order, without saying which text is which. An argument appears in
several pairs, so the ids a text could be are the intersection of its rows' id pairs; a text
narrowed to one id fixes its partner in every row they share, and that repeats until nothing
changes. Texts left ambiguous (or claimed by two ids) give no order: those rows are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from service.core.rows import Row

_CONVERSATION = re.compile(r"ukp-([^_-]+)_([^_-]+)-.+")


@dataclass(frozen=True, slots=True)
class Ordered:
    """A row in its original order: the texts as A1, A2, and which one the worker chose."""

    row: Row
    a1: str
    a2: str
    human_choice: int  # 1 or 2


def argument_ids(row: Row) -> tuple[str, str] | None:
    """(a1, a2) from the row's conversation id, None when it is not a ukp id."""
    found = _CONVERSATION.fullmatch(row.conversation_id)
    return (found.group(1), found.group(2)) if found else None


def text_ids(rows: Sequence[Row]) -> dict[str, str]:
    """Argument text -> its id, for every text the rows pin down."""
    candidates: dict[str, set[str]] = {}
    pairs: list[tuple[tuple[str, str], tuple[str, str]]] = []
    for row in rows:
        ids = argument_ids(row)
        if ids is None or ids[0] == ids[1] or row.chosen == row.rejected:
            continue
        pairs.append(((row.chosen, row.rejected), ids))
        for text in (row.chosen, row.rejected):
            known = candidates.get(text)
            candidates[text] = set(ids) if known is None else known & set(ids)
    resolved = {t: next(iter(ids)) for t, ids in candidates.items() if len(ids) == 1}
    changed = True
    while changed:
        changed = False
        for texts, ids in pairs:
            for mine, other in ((0, 1), (1, 0)):
                if texts[mine] in resolved and texts[other] not in resolved:
                    fixed = resolved[texts[mine]]
                    partner = ids[1] if fixed == ids[0] else ids[0]
                    if fixed in ids and partner in candidates[texts[other]]:
                        resolved[texts[other]] = partner
                        changed = True
    claimed: dict[str, set[str]] = {}
    for text, found in resolved.items():
        claimed.setdefault(found, set()).add(text)
    return {t: i for t, i in resolved.items() if len(claimed[i]) == 1}


def order_rows(
    rows: Sequence[Row], among: Sequence[Row] | None = None
) -> tuple[list[Ordered], int]:
    """`rows` in A1/A2 order where it can be recovered (from the ids in `among`, default all
    of `rows`), and how many were skipped."""
    ids = text_ids(rows if among is None else among)
    out: list[Ordered] = []
    for row in rows:
        pair = argument_ids(row)
        chosen, rejected = ids.get(row.chosen), ids.get(row.rejected)
        if pair is None or chosen is None or rejected is None:
            continue
        if (chosen, rejected) == pair:
            out.append(Ordered(row, row.chosen, row.rejected, 1))
        elif (rejected, chosen) == pair:
            out.append(Ordered(row, row.rejected, row.chosen, 2))
    return out, len(rows) - len(out)
