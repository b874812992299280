"""Small builders shared by tests."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from service.core.inputs import Message, PreferencePair, ScoringTask

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


TOPICS = [
    (
        "boil an egg",
        "Boil it for 9 minutes.",
        "Put the egg in boiling water and cook it for about nine minutes, then cool it in cold water so the shell peels cleanly and the yolk stays firm.",
    ),
    (
        "steep green tea",
        "Two minutes at 80 °C.",
        "Heat the water to about 80 °C rather than boiling, then steep the leaves for one to three minutes depending on the variety, tasting as you go so it never turns bitter.",
    ),
    (
        "fix a flat bike tyre",
        "Patch the tube.",
        "Remove the wheel, lever the tyre off, find the puncture by inflating the tube in water, patch it after roughening the rubber, then refit the tube and pump it back up.",
    ),
    (
        "learn a language",
        "Practise daily.",
        "Practise every day in short sessions, mix listening and speaking with reading, use spaced-repetition flashcards for vocabulary, and find a conversation partner to keep it practical.",
    ),
    (
        "sleep better",
        "Keep a schedule.",
        "Keep the same bedtime and wake time every day, avoid screens and caffeine in the evening, keep the room cool and dark, and get daylight in the morning.",
    ),
    (
        "save money",
        "Budget monthly.",
        "Write a monthly budget, automate a transfer to savings on payday, cancel subscriptions you do not use, and cook at home more often than you eat out.",
    ),
    (
        "write a CV",
        "Keep it to one page.",
        "Keep it to one page, lead with your most relevant experience, quantify achievements with numbers, tailor it to each job, and proofread it twice before sending.",
    ),
    (
        "start running",
        "Begin slowly.",
        "Begin with run-walk intervals three times a week, increase your total time by about ten percent per week, wear comfortable shoes, and rest when something hurts.",
    ),
    (
        "grow tomatoes",
        "Give them sun.",
        "Plant them in full sun after the last frost, water deeply but not too often, stake or cage the stems, and feed them with a balanced fertiliser once they flower.",
    ),
    (
        "clean a laptop",
        "Wipe it gently.",
        "Power it off, wipe the screen with a microfibre cloth, blow dust out of the keyboard with compressed air, and clean the case with a slightly damp cloth.",
    ),
    (
        "make coffee",
        "Use fresh beans.",
        "Grind fresh beans just before brewing, use about one gram of coffee per sixteen grams of water, keep the water just off the boil, and brew for around four minutes.",
    ),
    (
        "study for exams",
        "Test yourself.",
        "Space your study sessions over several weeks, test yourself with past papers instead of rereading, explain topics out loud, and sleep well the night before.",
    ),
]


def synthetic_rows(
    per_user: int = 24, test_per_user: int = 6, users: tuple[str, ...] = ("terse", "verbose")
) -> list[dict[str, Any]]:
    """Rows in the PersonalRewardBench schema: users named `terse...` prefer the short answer,
    the others the long one, over the same paraphrased prompts (each user's rows are its own)."""
    rows: list[dict[str, Any]] = []
    for user in users:
        for i in range(per_user + test_per_user):
            topic, short, long = TOPICS[i % len(TOPICS)]
            prompt = ["How do I", "What is the best way to", "Any tips to", "Help me"][
                i // len(TOPICS) % 4
            ]
            chosen, rejected = (short, long) if user.startswith("terse") else (long, short)
            rows.append(
                {
                    "user_id": user,
                    "conversation_id": f"syn-{i}-{user}",
                    "context": [{"role": "user", "content": f"{prompt} {topic}? (asks {user})"}],
                    "chosen": {"role": "assistant", "content": chosen},
                    "rejected": {"role": "assistant", "content": rejected},
                    "split": "test" if i >= per_user else ("val" if i % 5 == 4 else "train"),
                    "dataset": "synthetic",
                }
            )
    return rows


def write_jsonl(path: Path, rows: list[Any], *, gz: bool = False) -> Path:
    import gzip
    import json

    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text)
    return path


def api_keys(*keys: dict[str, Any]) -> str:
    """PGENRM_API_KEYS for keys given as {"name", "secret", "tenant"?, "scopes"?, "limits"?}:
    each secret is stored hashed, as in a real keys file."""
    entries = [
        {
            "name": k["name"],
            "tenant": k.get("tenant", "default"),
            "sha256": hashlib.sha256(str(k["secret"]).encode()).hexdigest(),
            "scopes": k.get("scopes", ["score", "users"]),
            "limits": k.get("limits", {}),
        }
        for k in keys
    ]
    return json.dumps({"keys": entries})


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
