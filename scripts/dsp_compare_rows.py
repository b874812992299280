"""Write `pgenrm compare` rows from the DSP test split: one row per (prompt, user).

DSP's four domain users (academy, business, entertainment, literature) share every prompt and
each prefers its own domain's answer. A pair `dsp-<i>-<user>-<other>` has the user's domain
answer as `chosen` and the other domain's (or `normal`) as `rejected`, so the prompt's four
answers are read off its pairs. Each row's variants are those four answers named by domain,
with a short inline history drawn from the user's own train pairs (seeded per row).

    .venv/bin/python scripts/dsp_compare_rows.py /tmp/dsp_rows.jsonl
    .venv/bin/pgenrm compare --data /tmp/dsp_rows.jsonl --out /tmp/dsp_compare --segment user

The rows are written outside the repository (a path inside it is refused): the data has its
own licence (../shared/data/dsp/DATA_LICENSE).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "dsp" / "pairs.jsonl.gz"
DOMAINS = ("academy", "business", "entertainment", "literature")


def _text(answer: Any) -> str:
    return str(answer["content"] if isinstance(answer, dict) else answer)


def _prompt_of(conversation_id: str) -> tuple[str, str, str]:
    """`dsp-12-academy-business` -> ("12", "academy", "business")."""
    _, index, user, other = conversation_id.split("-", 3)
    return index, user, other


def _rng(seed: int, *parts: str) -> random.Random:
    digest = hashlib.sha256("\x1f".join([str(seed), *parts]).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def build_rows(
    pairs: list[dict[str, Any]], history_k: int, seed: int, prompts: int | None, normal: bool
) -> list[dict[str, Any]]:
    answers: dict[str, dict[str, str]] = defaultdict(dict)  # prompt index -> domain -> text
    context: dict[str, list[dict[str, str]]] = {}
    split: dict[str, str] = {}
    train: dict[str, list[dict[str, Any]]] = defaultdict(list)  # user -> history pairs
    for p in pairs:
        index, user, other = _prompt_of(p["conversation_id"])
        answers[index][user] = _text(p["chosen"])
        answers[index][other] = _text(p["rejected"])
        context[index], split[index] = p["context"], p["split"]
        if p["split"] == "train" and _text(p["chosen"]).strip() and _text(p["rejected"]).strip():
            train[user].append(
                {
                    "context": p["context"],
                    "chosen": _text(p["chosen"]),
                    "rejected": _text(p["rejected"]),
                }
            )
    names = (*DOMAINS, "normal") if normal else DOMAINS
    test = sorted((i for i in answers if split[i] == "test"), key=int)[:prompts]
    rows = []
    for index in test:  # prompt-major: `--limit 4N` compares N prompts for every user
        for user in DOMAINS:
            pool = train[user]
            history = _rng(seed, user, index).sample(pool, min(history_k, len(pool)))
            rows.append(
                {
                    "id": f"dsp-{index}-{user}",
                    "user_id": user,
                    "history": history,
                    "context": context[index],
                    "variants": {n: answers[index][n] for n in names if n in answers[index]},
                    "attributes": {"domain": user},
                }
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("out", nargs="?", type=Path, default=Path("/tmp/dsp_rows.jsonl"))
    parser.add_argument("--data", type=Path, default=DATA, help="DSP pairs.jsonl.gz")
    parser.add_argument("--history-k", type=int, default=8, help="train pairs per row")
    parser.add_argument("--prompts", type=int, help="only the first N test prompts")
    parser.add_argument("--normal", action="store_true", help="add the `normal` answer")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = args.out.resolve()
    if out.is_relative_to(REPO):
        print(f"refusing to write the data into the repository ({out})", file=sys.stderr)
        return 2
    with gzip.open(args.data, "rt", encoding="utf-8") as handle:
        pairs = [json.loads(line) for line in handle if line.strip()]
    rows = build_rows(pairs, args.history_k, args.seed, args.prompts, args.normal)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    prompts = len(rows) // len(DOMAINS)
    print(f"wrote {len(rows)} rows ({prompts} prompts x {len(DOMAINS)} users) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
