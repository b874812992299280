"""Coordination across calls, worker processes and replicas: group assembly and idempotency.

Each has an in-process implementation (one worker) and a Redis one (every worker and replica
behind the same PGENRM_REDIS_URL).
"""
