"""Users in one SQLite file: survives restarts, shared by the worker processes of one host.

WAL mode lets readers run beside a writer; every write is one `BEGIN IMMEDIATE` transaction, so
two workers appending to the same user never lose a pair. Calls run in a thread (SQLite blocks).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from service.users.base import StoredUser, UserStore, UserStoreError

log = logging.getLogger("pgenrm.users")

T = TypeVar("T")


class SQLiteUserStore(UserStore):
    name = "sqlite"

    def __init__(self, path: Path, max_pairs: int) -> None:
        super().__init__(max_pairs)
        self.path = path
        self._lock = threading.Lock()  # one connection, used from worker threads in turn
        self._db: sqlite3.Connection | None = None  # opened on first use

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                self.path, check_same_thread=False, timeout=10.0, isolation_level=None
            )
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS users (user_id TEXT PRIMARY KEY, doc TEXT)")
            self._db = db
        return self._db

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                try:
                    return work(self._open())
                except (sqlite3.Error, OSError) as error:
                    # the path goes to the log only: store errors reach clients in 503s
                    log.warning("user store %s failed: %s", self.path, error)
                    reason = error.strerror if isinstance(error, OSError) else str(error)
                    raise UserStoreError(f"SQLite: {reason}") from error

        return await asyncio.to_thread(locked)

    def _read(self, db: sqlite3.Connection, user_id: str) -> StoredUser | None:
        row = db.execute("SELECT doc FROM users WHERE user_id = ?", (user_id,)).fetchone()
        return None if row is None else StoredUser.from_json(user_id, row[0])

    def _write(self, db: sqlite3.Connection, record: StoredUser) -> StoredUser:
        db.execute(
            "INSERT OR REPLACE INTO users (user_id, doc) VALUES (?, ?)",
            (record.user_id, record.to_json()),
        )
        return record

    def _transaction(
        self, user_id: str, change: Callable[[StoredUser | None], StoredUser | None]
    ) -> Callable[[sqlite3.Connection], StoredUser | None]:
        def work(db: sqlite3.Connection) -> StoredUser | None:
            db.execute("BEGIN IMMEDIATE")
            try:
                record = change(self._read(db, user_id))
                if record is not None:
                    self._write(db, record)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return record

        return work

    async def get(self, user_id: str) -> StoredUser | None:
        return await self._run(lambda db: self._read(db, user_id))

    async def _update(
        self, user_id: str, change: Callable[[StoredUser | None], StoredUser | None]
    ) -> StoredUser | None:
        return await self._run(self._transaction(user_id, change))

    async def delete(self, user_id: str) -> bool:
        def work(db: sqlite3.Connection) -> bool:
            return db.execute("DELETE FROM users WHERE user_id = ?", (user_id,)).rowcount > 0

        return await self._run(work)

    async def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
