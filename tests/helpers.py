"""Small builders shared by tests."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from service.engine.inputs import Message, PreferencePair, ScoringTask

SHORT = "About 2 minutes at 80 °C."
LONG = (
    "Green tea is delicate, so the steeping matters a great deal. Use water at around 70-80 °C "
    "rather than boiling, because boiling water scorches the leaves and makes the tea bitter. "
    "Steep for one to three minutes depending on the variety: Japanese sencha needs about a "
    "minute, while Chinese green teas such as Longjing can take two to three. Taste as you go, "
    "and remember that many green teas can be re-steeped two or three times."
)

# Pairs whose longer answer and shorter answer say the same thing.
QA = [
    (
        "How do I boil an egg?",
        "Boil it for 9 minutes, then cool it in cold water.",
        "Lower the egg into boiling water and cook it for about nine minutes for a firm yolk. "
        "Then move it into a bowl of cold water for a few minutes, which stops the cooking and "
        "makes the shell much easier to peel. Older eggs peel more cleanly than very fresh ones.",
    ),
    (
        "What's the capital of Australia?",
        "Canberra.",
        "The capital of Australia is Canberra. Many people guess Sydney or Melbourne, the two "
        "largest cities, but Canberra was purpose-built as a compromise between them and has "
        "been the seat of government since 1927, home to Parliament House and the High Court.",
    ),
    (
        "How many hours of sleep do adults need?",
        "Seven to nine hours a night.",
        "Most adults need between seven and nine hours of sleep each night. Individual needs "
        "vary a little with age, health and activity level, and consistently sleeping less than "
        "seven hours is linked to poorer concentration, mood and long-term health outcomes.",
    ),
    (
        "How do I convert Celsius to Fahrenheit?",
        "Multiply by 9/5 and add 32.",
        "To convert a temperature from Celsius to Fahrenheit, multiply the Celsius value by 9/5 "
        "(or 1.8) and then add 32. For example, 20 °C times 1.8 is 36, plus 32 gives 68 °F. The "
        "reverse is to subtract 32 and multiply by 5/9.",
    ),
]


def pair(prompt: str, chosen: str, rejected: str) -> PreferencePair:
    return PreferencePair(context=(Message("user", prompt),), chosen=chosen, rejected=rejected)


def prefers(kind: str) -> tuple[PreferencePair, ...]:
    """A history where the user always picked the `short` (or `long`) answer."""
    return tuple(pair(q, s, long) if kind == "short" else pair(q, long, s) for q, s, long in QA)


def task(*candidates: str, prompt: str = "How long should I steep green tea?") -> ScoringTask:
    return ScoringTask(context=(Message("user", prompt),), candidates=candidates)


def history_json(kind: str) -> list[dict[str, Any]]:
    return [
        {"prompt": q, "chosen": s, "rejected": long}
        if kind == "short"
        else {"prompt": q, "chosen": long, "rejected": s}
        for q, s, long in QA
    ]


def wait_ready(client: TestClient, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get("/readyz").status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"not ready after {timeout}s: {client.get('/readyz').text}")
