"""ukp_convarg's A1/A2 order recovered from argument ids shared across pairs."""

from __future__ import annotations

from service.core.inputs import Message
from service.core.rows import Row
from service.offline.argument_order import order_rows, text_ids


def row(ids: str, chosen: str, rejected: str, worker: str = "w1") -> Row:
    return Row(
        user_id=worker,
        conversation_id=f"ukp-{ids}-{worker}",
        context=(Message(role="user", content="Debate: x"),),
        chosen=chosen,
        rejected=rejected,
        split="test",
    )


def test_shared_arguments_pin_the_order_and_propagate() -> None:
    rows = [
        row("1_2", "text two", "text one"),  # chosen is A2
        row("1_3", "text one", "text three"),  # "text one" is in both: id 1
        row("3_4", "text four", "text three"),  # "text three" is 3 by propagation
    ]
    assert text_ids(rows) == {"text one": "1", "text two": "2", "text three": "3", "text four": "4"}
    ordered, skipped = order_rows(rows)
    assert skipped == 0
    assert [(o.a1, o.a2, o.human_choice) for o in ordered] == [
        ("text one", "text two", 2),
        ("text one", "text three", 1),
        ("text three", "text four", 2),
    ]


def test_a_lone_pair_is_skipped_even_across_workers() -> None:
    rows = [row("5_6", "five", "six", "w1"), row("5_6", "six", "five", "w2")]
    ordered, skipped = order_rows(rows)
    assert ordered == [] and skipped == 2


def test_a_text_claimed_by_two_ids_gives_no_order() -> None:
    rows = [
        row("1_2", "same", "two"),
        row("1_3", "same", "three"),
        row("7_8", "same", "eight"),  # "same" cannot be both 1 and 7 or 8: ambiguous
        row("9_x", "bad", "worse", "w2"),
    ]
    ordered, skipped = order_rows(rows[3:], among=rows)
    assert "same" not in text_ids(rows)
    assert ordered == [] and skipped == 1
