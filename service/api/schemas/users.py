"""Wire models of `/v1/users/{user_id}`: a stored history and attributes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from service.api.schemas.common import HistoryPair, Strict

AttributeValue = str | int | float | bool


class UserWrite(Strict):
    """PUT: create or replace the user."""

    history: list[HistoryPair] = Field(default_factory=list)
    attributes: dict[str, AttributeValue] = Field(
        default_factory=dict, description="e.g. a segment or cohort, for A/B reports."
    )


class UserPatch(Strict):
    """PATCH: append pairs (the oldest beyond PGENRM_MAX_STORED_PAIRS are dropped) and merge
    attributes (a null value removes one)."""

    append: list[HistoryPair] = Field(default_factory=list)
    attributes: dict[str, AttributeValue | None] = Field(default_factory=dict)


class UserInfo(BaseModel):
    user_id: str
    version: int = Field(description="+1 on every write; scores name the version they used.")
    pairs: int
    attributes: dict[str, AttributeValue]
    updated_at: float = Field(description="Unix time of the last write.")
    dropped: int = Field(0, description="Oldest pairs this write dropped to stay within the cap.")
    history: list[HistoryPair] | None = Field(None, description="The pairs (GET only).")


class UserDeleted(BaseModel):
    user_id: str
    deleted: bool = True
    cached_entries_dropped: int = Field(description="Personas and profiles forgotten with it.")
