"""Keep-alive connections spread evenly over the workers, not just at random.

Each worker listens on its own SO_REUSEPORT socket and the kernel hashes every new connection to
one of them: even on average, not for a trainer's few dozen connections (32 on two workers split
19/13, 21/11, 23/9, 17/15, 19/13 in five tries), and a kept-alive connection stays where it
landed. The worker holding more then queues while the other idles: at 200 req/s offered to two
workers that answered ~260 in all, a 23/9 split sent 144 req/s to one of them.

So every worker publishes how many connections it holds in an array shared by all (one slot
each), and a worker holding more than its share (the mean, rounded up, plus `slack`) ends its
next response with `connection: close`: the client opens a new connection, which the kernel
hashes again, and the excess drains in a few responses. A close already decided counts as done
until the connection is gone, so a burst of responses does not close more than the excess.

Imported only by `service.server`: the supervisor makes the array, each worker its balance, the
HTTP protocol reports the count (`update`) and the outermost ASGI layer asks `should_close`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, MutableSequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ConnectionBalance:
    """One worker's view of the connections every worker holds."""

    def __init__(self, counts: MutableSequence[int], slot: int, slack: int = 1) -> None:
        if not 0 <= slot < len(counts):
            raise ValueError(f"slot {slot} outside the {len(counts)} workers' counts")
        self._counts, self._slot, self._slack = counts, slot, slack
        self._closing = 0  # closes decided whose connection is not gone yet

    def update(self, held: int) -> None:
        """This worker now holds `held` connections (the protocol calls it on every change).
        Only this worker writes its slot, so the slot is also what it held before."""
        gone = self._counts[self._slot] - held
        if gone > 0:
            self._closing = max(0, self._closing - gone)
        self._counts[self._slot] = held

    def should_close(self) -> bool:
        """True when this worker holds more than its share: the caller closes one connection
        after its response (counted here as closing until `update` sees it gone)."""
        own = self._counts[self._slot] - self._closing
        # The total keeps the closing ones: their clients reconnect, to some worker.
        share = math.ceil(sum(self._counts) / len(self._counts)) + self._slack
        if own <= share:
            return False
        self._closing += 1
        return True


class RebalanceMiddleware:
    """Adds `connection: close` to a response when `balance` says this worker holds too many."""

    def __init__(
        self, app: ASGIApp, balance: ConnectionBalance, on_close: Callable[[], None]
    ) -> None:
        self.app, self.balance, self.on_close = app, balance, on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_balanced(message: Message) -> None:
            if message["type"] == "http.response.start" and self.balance.should_close():
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
                self.on_close()
            await send(message)

        await self.app(scope, receive, send_balanced)
