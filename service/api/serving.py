"""The `/v1/score` serving object: wire request -> engine -> wire response.

Built and tested without FastAPI (like vLLM's `OpenAIServingChat`): the route only hands it the
validated body. It resolves the history (inline or stored), enforces the size limits that are
settings, and scores a request as a "group" of members: one member for a plain call, or the
members of a `group` (per-sample calls assembled by `service.coordination.groups`), whose
candidates are scored together in one plan, each member getting its own share of the answer.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from service.api._members import member_response, unscored_response
from service.api.errors import validation_error
from service.api.schemas.common import HistoryPair, Message
from service.api.schemas.score import GroupInfo, HistoryUsed, ScoreRequest, ScoreResponse
from service.coordination.groups import GroupAssembler, Joined, Member, MemoryGroups, Result
from service.core.config import Settings
from service.core.errors import (
    InvalidRequest,
    PgenrmError,
    ScoringFailed,
    Unavailable,
    UnknownUser,
)
from service.core.inputs import Message as DomainMessage
from service.core.inputs import PreferencePair, ScoringTask
from service.core.keys import DEFAULT_TENANT, namespaced
from service.core.metrics import Metrics
from service.engine.scaling import Scaling
from service.engine.scorer import ScoreOutcome, ScoringEngine
from service.users.base import UserStore, UserStoreError


def to_context(context: list[Message] | None, prompt: str | None) -> tuple[DomainMessage, ...]:
    if context is not None:
        return tuple(DomainMessage(m.role, m.content) for m in context)
    return (DomainMessage("user", prompt or ""),)


def to_pair(pair: HistoryPair) -> PreferencePair:
    return PreferencePair(
        context=to_context(pair.context, pair.prompt),
        chosen=pair.chosen,
        rejected=pair.rejected,
        feedback=pair.feedback,
    )


@dataclass
class Prepared:
    """One validated member, ready to be scored with others of its group."""

    request: ScoreRequest
    user: str  # the user id in its tenant's namespace (stores, caches, the engine)
    history: tuple[PreferencePair, ...]
    history_used: HistoryUsed
    context: tuple[DomainMessage, ...]
    failed: dict[int, str]  # candidate index -> why it is not scored
    scaling: Scaling
    cold_start: bool
    started: float = field(default_factory=time.perf_counter)

    @property
    def usable(self) -> list[int]:
        return [i for i in range(len(self.request.candidates)) if i not in self.failed]


class ScoreService:
    def __init__(
        self,
        engine: ScoringEngine,
        settings: Settings,
        metrics: Metrics | None = None,
        users: UserStore | None = None,
        groups: GroupAssembler | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = metrics
        self.users = users
        self.groups = groups or MemoryGroups(settings.group_wait_s, settings.max_pending_groups)
        # This process's members waiting in a group, already prepared: whoever scores the group
        # here reuses them instead of reading the user store again.
        self._waiting: dict[str, Prepared] = {}

    async def score(self, request: ScoreRequest, tenant: str = DEFAULT_TENANT) -> ScoreResponse:
        """Score for a user of `tenant` (whose stored users and groups no other tenant sees)."""
        if not self.engine.ready:
            raise Unavailable("the scoring backend is still loading; retry shortly", retry_after=5)
        if request.group is None:
            [outcome] = await self._score_members([await self.prepare(request, tenant)])
            if isinstance(outcome, PgenrmError):
                raise outcome
            return outcome
        self._check_group(request)
        prepared = await self.prepare(request, tenant)  # a bad member fails here, not in its group
        key = f"{prepared.user}\x1f{request.group.id}"
        token = uuid.uuid4().hex
        member = {"request": request.model_dump(mode="json"), "tenant": tenant, "local": token}
        self._waiting[token] = prepared
        try:
            joined = await self.groups.join(key, request.group.size, member, self._score_group)
        finally:
            self._waiting.pop(token, None)
        return self._joined(request, joined)

    def _check_group(self, request: ScoreRequest) -> None:
        assert request.group is not None
        limit = self.settings.max_group_size
        _at_most("group.size", request.group.size, limit, "members", "MAX_GROUP_SIZE")

    def _joined(self, request: ScoreRequest, joined: Joined) -> ScoreResponse:
        status, body = int(joined.result["status"]), joined.result["body"]
        if status >= 400:
            raise _error_from(status, body)
        response = ScoreResponse.model_validate(body)
        if response.group is not None:
            partial = joined.partial or response.group.partial
            response.group = response.group.model_copy(update={"partial": partial})
        if self.metrics is not None and request.group is not None:
            self.metrics.groups.labels(outcome="partial" if joined.partial else "complete").inc()
        return response

    async def _score_group(self, members: list[Member]) -> list[Result]:
        """The group's scorer (run by the one caller that closes the group)."""
        prepared: list[Prepared | PgenrmError] = []
        for raw in members:
            local = self._waiting.get(str(raw.get("local")))
            if local is not None:
                prepared.append(local)
                continue
            try:
                request = ScoreRequest.model_validate(raw["request"])
                prepared.append(await self.prepare(request, str(raw.get("tenant", DEFAULT_TENANT))))
            except ValidationError as error:
                prepared.append(validation_error(error.errors()))
            except PgenrmError as error:
                prepared.append(error)
        ready = [p for p in prepared if isinstance(p, Prepared)]
        scored = iter(await self._score_members(ready, group=len(members)) if ready else [])
        results: list[Result] = []
        for p in prepared:
            outcome = next(scored) if isinstance(p, Prepared) else p
            if isinstance(outcome, PgenrmError):
                results.append({"status": outcome.status, "body": outcome.envelope()})
            else:
                results.append({"status": 200, "body": outcome.model_dump(mode="json")})
        return results

    async def prepare(self, request: ScoreRequest, tenant: str = DEFAULT_TENANT) -> Prepared:
        s = self.settings
        self.check_limits(request)
        user = namespaced(tenant, request.user_id)
        history, used = await self._history(request, user)
        failed: dict[int, str] = {}
        for i, text in enumerate(request.candidates):
            if not text.strip():
                failed[i] = "empty"
            elif len(text) > s.max_text_chars:
                failed[i] = "too_long"
        scaling, cold_start = self.resolve_scaling(request, bool(history))
        return Prepared(
            request=request,
            user=user,
            history=history,
            history_used=used,
            context=to_context(request.context, request.prompt),
            failed=failed,
            scaling=scaling,
            cold_start=cold_start,
        )

    async def _history(
        self, request: ScoreRequest, user: str
    ) -> tuple[tuple[PreferencePair, ...], HistoryUsed]:
        if request.history is not None:
            pairs = tuple(to_pair(h) for h in request.history)
            return pairs, HistoryUsed(source="inline" if pairs else "none", pairs=len(pairs))
        try:
            stored = await self.users.get(user) if self.users is not None else None
        except UserStoreError as error:
            raise Unavailable(f"the user store failed: {error}", retry_after=2) from error
        if stored is None:
            if request.unknown_user == "cold_start":
                return (), HistoryUsed(source="none", pairs=0)
            raise UnknownUser(
                f"no stored user {request.user_id!r}: store one (PUT /v1/users/{{id}}), send "
                "`history`, or set `unknown_user` to `cold_start`",
                field="user_id",
            )
        pairs = stored.history[-self.settings.max_history :] if self.settings.max_history else ()
        return pairs, HistoryUsed(source="stored", version=stored.version, pairs=len(pairs))

    async def _score_members(
        self, members: list[Prepared], group: int | None = None
    ) -> list[ScoreResponse | PgenrmError]:
        """Score the members' usable candidates together in one plan (the first member's user,
        history, input and scaling lead; a member that disagrees on them gets an error)."""
        lead = members[0]
        out: list[ScoreResponse | PgenrmError | None] = [None] * len(members)
        texts: list[str] = []
        owner: list[tuple[int, int]] = []  # engine candidate -> (member, candidate index)
        for m, p in enumerate(members):
            mismatch = _mismatch(lead, p)
            if mismatch is not None:
                out[m] = InvalidRequest(
                    f"`{mismatch}` differs from the group's first member", field=mismatch
                )
                continue
            for i in p.usable:
                owner.append((m, i))
                texts.append(p.request.candidates[i])
        reference = lead.request.reference
        info = self._group_info(lead, members, group, len(texts))
        if not texts:  # nothing scoreable: answer without asking the backend
            for m, p in enumerate(members):
                out[m] = out[m] or self._unscored(p, info, None)
            return [o for o in out if o is not None]
        task = ScoringTask(lead.context, (*texts, *([reference] if reference else [])))
        try:
            asked = lead.request
            outcome = await self.engine.score(
                lead.user, lead.history, task, lead.scaling, asked.seed, asked.aggregation
            )
        except ScoringFailed as error:
            self._count_failed(lead.scaling)
            for m, p in enumerate(members):
                if out[m] is None:
                    use = p.request.reward.fallback is not None
                    out[m] = self._unscored(p, info, error) if use else error
            return [o for o in out if o is not None]
        self._count(outcome)
        for m, p in enumerate(members):
            if out[m] is None:
                mine = {c: i for c, (owner_m, i) in enumerate(owner) if owner_m == m}
                scored = list(range(len(texts)))
                out[m] = member_response(
                    p,
                    outcome,
                    mine,
                    scored,
                    info,
                    len(texts) if reference else None,
                    self.metrics,
                    (self.engine.options.ind_weight, self.engine.options.pro_weight),
                )
        return [o for o in out if o is not None]

    def _unscored(
        self, p: Prepared, info: GroupInfo | None, error: ScoringFailed | None
    ) -> ScoreResponse:
        ready = self.engine.readiness()
        return unscored_response(
            p,
            info,
            error,
            self.metrics,
            backend=ready.backend,
            model=ready.model,
            prototypes_version=self.engine.prototypes_version,
        )

    def _group_info(
        self, lead: Prepared, members: list[Prepared], arrived: int | None, candidates: int
    ) -> GroupInfo | None:
        if lead.request.group is None or arrived is None:
            return None
        size = lead.request.group.size
        return GroupInfo(
            id=lead.request.group.id,
            size=size,
            arrived=arrived,
            partial=arrived < size,
            candidates=candidates,
        )

    def _count(self, outcome: ScoreOutcome) -> None:
        if self.metrics is None:
            return
        for level, tally in (("ind", outcome.ind), ("pro", outcome.pro)):
            if tally.valid:
                self.metrics.samples.labels(level=level, outcome="valid", reason="ok").inc(
                    tally.valid
                )
            for reason, count in tally.failures.items():
                self.metrics.samples.labels(level=level, outcome="failed", reason=reason).inc(count)
        if outcome.degraded:
            self.metrics.degraded.inc()

    def _count_failed(self, scaling: Scaling) -> None:
        if self.metrics is None:
            return
        for level, n in (("ind", scaling.ind), ("pro", scaling.pro)):
            if n:
                self.metrics.samples.labels(level=level, outcome="failed", reason="all_failed").inc(
                    n
                )

    def resolve_scaling(self, request: ScoreRequest, has_history: bool) -> tuple[Scaling, bool]:
        """Request's scaling or the defaults, and whether this is a cold start: no history
        informs the score. A user with no history is scored at the prototype level only when
        prototypes are loaded; without them, at the individual level on the prior alone."""
        s = self.settings
        prototypes = self.engine.prototypes_version is not None
        if request.scaling is not None:
            scaling = Scaling(request.scaling.ind, request.scaling.pro)
        else:
            scaling = Scaling(s.default_ind, s.default_pro if prototypes else 0)
        if not has_history and prototypes and scaling.pro > 0:
            return Scaling(0, scaling.pro), True
        return scaling, not has_history

    def check_limits(self, request: ScoreRequest) -> None:
        s = self.settings
        _at_most(
            "candidates", len(request.candidates), s.max_candidates, "candidates", "MAX_CANDIDATES"
        )
        history = request.history or []
        _at_most("history", len(history), s.max_history, "history pairs", "MAX_HISTORY")
        if request.scaling is not None:
            _at_most("scaling.ind", request.scaling.ind, s.max_ind, "ind samples", "MAX_IND")
            _at_most("scaling.pro", request.scaling.pro, s.max_pro, "pro samples", "MAX_PRO")
            if request.scaling.pro and self.engine.prototypes_version is None:
                raise InvalidRequest(
                    "`scaling.pro`: prototype-level samples need a prototype artefact and none "
                    "is loaded (PGENRM_PROTOTYPES_DIR); ask for `ind` samples only",
                    field="scaling.pro",
                )
        for name, text in _texts(request):
            if len(text) > s.max_text_chars:
                raise InvalidRequest(
                    f"`{name}` has {len(text):,} characters; the limit is {s.max_text_chars:,} "
                    "(PGENRM_MAX_TEXT_CHARS)",
                    field=name,
                )


def _mismatch(lead: Prepared, other: Prepared) -> str | None:
    """The first field on which a group member disagrees with the group's first member."""
    if lead.user != other.user:
        return "user_id"
    if lead.context != other.context:
        return "prompt"
    if lead.history != other.history:
        return "history"
    if lead.request.aggregation != other.request.aggregation:
        return "aggregation"
    return None


def _error_from(status: int, body: dict[str, Any]) -> PgenrmError:
    error = body.get("error") or {}
    out = PgenrmError(
        str(error.get("message", "error")),
        field=error.get("field"),
        details=list(error.get("details") or []),
    )
    out.status, out.type = status, str(error.get("type", "error"))
    return out


def _at_most(field: str, value: int, limit: int, what: str, setting: str) -> None:
    if value > limit:
        raise InvalidRequest(
            f"`{field}`: {value} {what} exceed the limit of {limit} (PGENRM_{setting})", field=field
        )


def _texts(request: ScoreRequest) -> list[tuple[str, str]]:
    """Every text but the candidates (an over-long candidate fails alone, not the request)."""
    out: list[tuple[str, str]] = []
    if request.prompt is not None:
        out.append(("prompt", request.prompt))
    if request.reference is not None:
        out.append(("reference", request.reference))
    out += [(f"context[{i}].content", m.content) for i, m in enumerate(request.context or [])]
    for i, pair in enumerate(request.history or []):
        out += [(f"history[{i}].chosen", pair.chosen)]
        out += [(f"history[{i}].rejected", pair.rejected)]
        if pair.prompt is not None:
            out.append((f"history[{i}].prompt", pair.prompt))
        if pair.feedback is not None:
            out.append((f"history[{i}].feedback", pair.feedback))
        out += [
            (f"history[{i}].context[{j}].content", m.content)
            for j, m in enumerate(pair.context or [])
        ]
    return out
