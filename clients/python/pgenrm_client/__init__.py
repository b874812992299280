"""pgenrm_client: call a pgenrm reward service, and plug it into RLHF trainers.

- `PgenrmClient` (sync) and `AsyncPgenrmClient` (asyncio): every endpoint, with retries, a
  total deadline and idempotency keys (`pgenrm_client._retry`); errors in `errors`.
- Trainer adapters (import the one you use; none imports its trainer):
  `pgenrm_client.trl.make_reward_func`, `pgenrm_client.verl.compute_score`,
  `pgenrm_client.openrlhf.reward_func`, `pgenrm_client.slime.rm` / `batched_rm`.
"""

from pgenrm_client._api import __version__, score_request
from pgenrm_client._retry import RetryPolicy
from pgenrm_client._shared import aclose_shared_clients, close_shared_clients
from pgenrm_client.aio import AsyncPgenrmClient
from pgenrm_client.client import PgenrmClient
from pgenrm_client.errors import (
    BadResponseError,
    DeadlineExceeded,
    NotScoredError,
    PgenrmError,
    RequestError,
    ServerError,
    UnavailableError,
    UnknownUserError,
)

__all__ = [
    "AsyncPgenrmClient",
    "BadResponseError",
    "DeadlineExceeded",
    "NotScoredError",
    "PgenrmClient",
    "PgenrmError",
    "RequestError",
    "RetryPolicy",
    "ServerError",
    "UnavailableError",
    "UnknownUserError",
    "__version__",
    "aclose_shared_clients",
    "close_shared_clients",
    "score_request",
]
