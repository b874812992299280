"""Find the chain's JSON object in free text, repairing what is safely repairable.

Private to `service.engine.parsing`. Returns the decoded object plus what had to be done to get
it; never raises for any input text.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

_START = re.compile(r"<\s*JSON[_ ]?START\s*>", re.IGNORECASE)
_END = re.compile(r"<\s*/?\s*JSON[_ ]?END\s*>", re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?")
_TRAILING_COMMA = re.compile(r",(\s*[}\]])")
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"'})
_MAX_LITERAL_EVAL_CHARS = 50_000


@dataclass
class Extracted:
    obj: dict[str, Any] | None = None
    analysis: str = ""
    flags: list[str] = field(default_factory=list)
    failure: str | None = None  # FailureReason when obj is None
    detail: str = ""


def _is_chain_object(value: object) -> bool:
    """A chain has `better_response` or `rationale`; `scores` counts only as a score object
    (the released prompt names it once), never the list of a per-response breakdown."""
    if not isinstance(value, dict):
        return False
    if "better_response" in value or "rationale" in value:
        return True
    return isinstance(value.get("scores"), dict)


def _complete_objects(text: str) -> list[tuple[int, int, dict[str, Any]]]:
    """Every complete JSON object that looks like a chain: (start, end, object)."""
    decoder = json.JSONDecoder()
    found: list[tuple[int, int, dict[str, Any]]] = []
    pos = 0
    while (start := text.find("{", pos)) != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            pos = start + 1
            continue
        if _is_chain_object(value):
            found.append((start, end, value))
            pos = end
        else:
            pos = start + 1
    return found


def _balanced_region(text: str, start: int) -> str | None:
    """The text from `start` (a '{') to its matching '}', string-aware; None when unclosed."""
    depth = 0
    in_string: str | None = None
    escaped = False
    for i in range(start, len(text)):
        ch = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == in_string:
                in_string = None
        elif ch in "\"'" and (ch == '"' or text[i - 1 : i] in ("{", ":", ",", " ", "[", "\n")):
            in_string = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return None


def _repair(region: str) -> dict[str, Any] | None:
    """Trailing commas, typographic quotes, raw line breaks inside strings, Python-literal dicts:
    what a model commonly writes."""
    candidates = [_TRAILING_COMMA.sub(r"\1", region)]
    candidates.append(candidates[0].translate(_SMART_QUOTES))
    for candidate in candidates:
        try:  # strict=False: a rationale written over several real lines, not with "\n"
            value = json.loads(candidate, strict=False)
        except (ValueError, RecursionError):
            continue
        if _is_chain_object(value):
            return value  # type: ignore[no-any-return]
    if len(region) <= _MAX_LITERAL_EVAL_CHARS:
        try:
            value = ast.literal_eval(candidates[0])
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None
        if _is_chain_object(value):
            return value  # type: ignore[no-any-return]
    return None


def extract(text: str) -> Extracted:
    out = Extracted()
    if not text or not text.strip():
        out.failure, out.detail = "empty_output", "the sample is empty"
        return out
    starts = list(_START.finditer(text))
    ends = list(_END.finditer(text))
    search_from = starts[0].end() if starts else 0
    out.analysis = text[: starts[0].start()].strip() if starts else ""
    body = text[search_from:]
    if len(starts) > 1 or len(ends) > 1:
        out.flags.append("multiple_json_blocks")
    if not starts:
        out.flags.append("missing_start_marker")

    objects = _complete_objects(body)
    if objects:
        start, end, obj = objects[-1]
        if len(objects) > 1 and "multiple_json_blocks" not in out.flags:
            out.flags.append("multiple_json_blocks")
        if not starts:
            out.analysis = body[:start].strip()
        out.obj = obj
        tail = body[end:]
        _note_wrapping(out, body[:start], tail, has_end=bool(ends))
        return out

    # No complete object: try repairs on the first balanced region after the start marker.
    brace = body.find("{")
    if brace == -1:
        out.failure, out.detail = "no_json", "no JSON object in the sample"
        return out
    if not starts:
        out.analysis = body[:brace].strip()
    region = _balanced_region(body, brace)
    if region is None:
        out.failure = "truncated"
        out.detail = "the JSON object is never closed (output cut off?)"
        return out
    repaired = _repair(region)
    if repaired is None:
        out.failure, out.detail = "invalid_json", "the JSON object does not decode"
        return out
    out.obj = repaired
    out.flags.append("json_repaired")
    tail = body[brace + len(region) :]
    _note_wrapping(out, body[:brace], tail, has_end=bool(ends))
    return out


def _note_wrapping(out: Extracted, head: str, tail: str, *, has_end: bool) -> None:
    if _FENCE.search(head) or _FENCE.search(tail):
        out.flags.append("code_fence")
    if not has_end:
        out.flags.append("missing_end_marker")
    leftover = _END.sub("", _FENCE.sub("", tail)).strip()
    if leftover:
        out.flags.append("trailing_text")
    if out.analysis:
        out.analysis = _FENCE.sub("", out.analysis).strip()
