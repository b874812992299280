"""Stored users: a history and attributes per user id, so score calls need not resend them.

`base.UserStore` is the seam; `sqlite.SQLiteUserStore` (one file under PGENRM_STATE_DIR, shared
by the worker processes of a host) and `redis.RedisUserStore` (shared by replicas) implement it.
"""
