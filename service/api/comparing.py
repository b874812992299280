"""The `/v1/compare` serving object: bounded rows -> `service.comparison` -> one report.

Each row is held to the limits its `/v1/score` call would have (history, texts, scaling), and
variants to the candidate limit; stored users are read in the caller's tenant. The CLI
(`pgenrm compare`) reuses `to_row` and `stored_lookup`, and has no row bound.
"""

from __future__ import annotations

from functools import partial

from service.api.schemas.compare import MAX_ROWS, MAX_VARIANTS, CompareRequest, CompareRow
from service.api.serving import ScoreService, to_context, to_pair
from service.comparison.results import Comparison
from service.comparison.rows import Row
from service.comparison.run import EngineRowScorer, Lookup, Profile, compare
from service.core.config import Settings
from service.core.errors import InvalidRequest, Unavailable
from service.core.keys import DEFAULT_TENANT, namespaced
from service.engine.scaling import Scaling
from service.users.base import UserStore, UserStoreError


def to_row(row: CompareRow) -> Row:
    return Row(
        user_id=row.user_id or "",
        history=None if row.history is None else tuple(to_pair(p) for p in row.history),
        context=to_context(row.context, row.prompt),
        variants=dict(row.variants),
        attributes=dict(row.attributes),
        id=row.id,
    )


def stored_lookup(users: UserStore | None, tenant: str, max_history: int) -> Lookup:
    """Stored users of `tenant`, with the most recent `max_history` pairs (as /v1/score)."""

    async def lookup(user_id: str) -> Profile | None:
        if users is None:
            return None
        try:
            stored = await users.get(namespaced(tenant, user_id))
        except UserStoreError as error:
            raise Unavailable(f"the user store failed: {error}", retry_after=2) from error
        if stored is None:
            return None
        pairs = stored.history[-max_history:] if max_history else ()
        return Profile(pairs, stored.attributes)

    return lookup


def default_scaling(settings: Settings, prototypes: bool) -> Scaling:
    """A row's samples when the request names none: the server's defaults, as /v1/score."""
    return Scaling(settings.default_ind, settings.default_pro if prototypes else 0)


class CompareService:
    def __init__(self, scorer: ScoreService) -> None:
        self.scorer = scorer  # its engine, settings, user store and per-call limits

    def check(self, request: CompareRequest) -> None:
        """The bounds of one call (422 naming the field), before any cost is charged."""
        if len(request.rows) > MAX_ROWS:
            raise InvalidRequest(
                f"`rows`: {len(request.rows)} rows exceed the limit of {MAX_ROWS} per "
                "/v1/compare call; split them, or run `pgenrm compare --data rows.jsonl`",
                field="rows",
            )
        limit = min(MAX_VARIANTS, self.scorer.settings.max_candidates)
        for i, row in enumerate(request.rows):
            where = f"rows[{i}]"
            if len(row.variants) > limit:
                raise InvalidRequest(
                    f"`{where}.variants`: {len(row.variants)} variants exceed the limit of "
                    f"{limit} per row",
                    field=f"{where}.variants",
                )
            for name, text in row.variants.items():
                if len(text) > self.scorer.settings.max_text_chars:
                    raise InvalidRequest(
                        f"`{where}.variants.{name}` has {len(text):,} characters; the limit is "
                        f"{self.scorer.settings.max_text_chars:,} (PGENRM_MAX_TEXT_CHARS)",
                        field=f"{where}.variants.{name}",
                    )
            try:
                self.scorer.check_limits(row.score_request(request.scaling))
            except InvalidRequest as error:
                field = f"{where}.{error.field}" if error.field else where
                raise InvalidRequest(f"`{where}`: {error.message}", field=field) from error

    async def compare(self, request: CompareRequest, tenant: str = DEFAULT_TENANT) -> Comparison:
        engine, settings = self.scorer.engine, self.scorer.settings
        if not engine.ready:
            raise Unavailable("the scoring backend is still loading; retry shortly", retry_after=5)
        self.check(request)
        scaling = default_scaling(settings, engine.prototypes_version is not None)
        if request.scaling is not None:
            scaling = Scaling(request.scaling.ind, request.scaling.pro)
        scorer = EngineRowScorer(
            engine,
            scaling,
            lookup=stored_lookup(self.scorer.users, tenant, settings.max_history),
            engine_user=partial(namespaced, tenant),
        )
        return await compare(
            [to_row(r) for r in request.rows],
            scorer,
            baseline=request.baseline,
            segment=request.segment,
            seed=request.seed,
            concurrency=settings.batch_concurrency,
        )
