"""Who is calling: bearer API keys, their scopes, tenants, request rates and cost budgets.

With no keys configured every caller is the same anonymous principal of the default tenant
(the server then listens on loopback only, unless PGENRM_INSECURE says otherwise) and the admin
API is closed: it opens only to a key with the `admin` scope.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass

from service.coordination.ratelimit import RateLimiter
from service.core.config import Settings
from service.core.errors import Forbidden, InvalidRequest, TooManyRequests, Unauthorized
from service.core.keys import DEFAULT_TENANT, ApiKey, Keyring, Scope
from service.core.metrics import Metrics
from service.core.priority import background


@dataclass(frozen=True)
class Principal:
    name: str
    tenant: str
    scopes: frozenset[Scope]
    requests_per_s: float
    cost_per_minute: int
    max_concurrent_expensive: int


class Gatekeeper:
    def __init__(
        self,
        keyring: Keyring,
        limiter: RateLimiter,
        settings: Settings,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.keyring = keyring
        self.limiter = limiter
        self.settings = settings
        self._anonymous = self._principal(None)

    def _principal(self, key: ApiKey | None) -> Principal:
        s = self.settings
        limits = key.limits if key is not None else None
        return Principal(
            name=key.name if key is not None else "anonymous",
            tenant=key.tenant if key is not None else DEFAULT_TENANT,
            scopes=key.scopes if key is not None else frozenset(("score", "users", "compare")),
            requests_per_s=(limits and limits.requests_per_s) or s.default_requests_per_s,
            cost_per_minute=(limits and limits.cost_per_minute) or s.default_cost_per_minute,
            max_concurrent_expensive=(limits and limits.max_concurrent_expensive)
            or s.default_max_concurrent_expensive,
        )

    def authenticate(self, secret: str | None) -> Principal:
        if self.keyring.empty:
            return self._anonymous
        if not secret:
            raise Unauthorized("this server needs an API key: send `Authorization: Bearer <key>`")
        key = self.keyring.find(secret)
        if key is None:
            raise Unauthorized("unknown API key")
        return self._principal(key)

    async def authorize(self, secret: str | None, scope: Scope) -> Principal:
        """The caller, if it may use `scope` now (401, 403, or 429 with Retry-After)."""
        if scope == "admin" and not self.keyring.has_admin:
            raise Forbidden("the admin API is closed: no configured key has the `admin` scope")
        principal = self.authenticate(secret)
        if scope not in principal.scopes:
            raise Forbidden(f"key {principal.name!r} lacks the `{scope}` scope")
        with self._counted("rate"):
            await self.limiter.admit(principal.name, principal.requests_per_s)
        return principal

    @contextmanager
    def _counted(self, reason: str) -> Iterator[None]:
        """Count a 429 from the limiter under `reason` (rate, budget, concurrency)."""
        try:
            yield
        except TooManyRequests:
            if self.metrics is not None:
                self.metrics.rate_limited.labels(reason).inc()
            raise

    @asynccontextmanager
    async def charge(self, principal: Principal, cost: int) -> AsyncIterator[None]:
        """Spend `cost` units of the key's budget; an expensive call also holds one of the
        key's slots in this process while it runs, at background priority."""
        budget = principal.cost_per_minute
        if cost > budget:  # could never pass: say so instead of a 429 retried forever
            raise InvalidRequest(
                f"this call costs {cost:,} units, more than key {principal.name!r} may spend in "
                f"a minute ({budget:,}); split it into smaller calls",
                field="body",
            )
        if cost < self.settings.expensive_cost:
            with self._counted("budget"):
                await self.limiter.spend(principal.name, cost, budget)
            yield
            return
        with ExitStack() as slot:
            with self._counted("concurrency"):
                slot.enter_context(
                    self.limiter.expensive(principal.name, principal.max_concurrent_expensive)
                )
            with self._counted("budget"):
                await self.limiter.spend(principal.name, cost, budget)
            with background():  # its CPU work yields to cheaper calls
                yield
