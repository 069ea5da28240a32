"""The emulator's storage: one SQLite connection behind a lock."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import weakref
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from ._events import WRITTEN_COLUMNS, dump_event, inet, render
from ._hashchain import HashChain

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    ts_us INTEGER NOT NULL,
    event_date TEXT NOT NULL,
    event_type TEXT NOT NULL,
    version TEXT NOT NULL,
    event_category TEXT NOT NULL,
    event_action TEXT NOT NULL,
    event_outcome TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    parent_event_id TEXT,
    parent_event_date TEXT,
    resource_type TEXT,
    resource_id TEXT,
    namespace TEXT,
    cluster_id TEXT,
    severity TEXT,
    duration_ms INTEGER,
    error_code TEXT,
    error_message TEXT,
    actor_id TEXT,
    actor_type TEXT,
    actor_ip TEXT,
    retention_days INTEGER NOT NULL,
    is_sensitive INTEGER NOT NULL,
    event_hash TEXT,
    previous_event_hash TEXT,
    hash_algorithm TEXT,
    legal_hold INTEGER NOT NULL DEFAULT 0,
    legal_hold_reason TEXT NOT NULL DEFAULT '',
    legal_hold_placed_by TEXT NOT NULL DEFAULT '',
    legal_hold_placed_at TEXT,
    event_data TEXT NOT NULL,
    rendered TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_events_by_correlation
    ON audit_events (correlation_id, ts_us DESC, event_id DESC);
CREATE INDEX IF NOT EXISTS audit_events_by_time ON audit_events (ts_us DESC, event_id DESC);
"""
_INSERT_COLUMNS = (
    *WRITTEN_COLUMNS,
    "event_hash",
    "previous_event_hash",
    "hash_algorithm",
    "rendered",
)
# The chain's head: the row with the greatest (event_timestamp, event_id), not the last written.
_HEAD = (
    "SELECT event_hash FROM audit_events WHERE correlation_id = ? AND event_hash IS NOT NULL "
    "ORDER BY ts_us DESC, event_id DESC LIMIT 1"
)
_INSERT = (
    f"INSERT INTO audit_events ({', '.join(_INSERT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _INSERT_COLUMNS)})"
)
# Postgres' `event_data->>key` is the text of the member: strings bare, true/false spelt out,
# objects and arrays as JSON. SQLite's json_extract gives 1/0 for booleans, hence the CASE.
_DETAIL = """CASE json_type(event_data, ?)
    WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
    ELSE CAST(json_extract(event_data, ?) AS TEXT) END = ?"""


@dataclasses.dataclass(frozen=True)
class Filters:
    """The query's filters; None means no filter."""

    correlation_id: str | None = None
    event_type: str | None = None
    event_category: str | None = None
    event_outcome: str | None = None
    severity: str | None = None
    since_us: int | None = None
    until_us: int | None = None
    detail_key: str | None = None
    detail_value: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        for name in ("correlation_id", "event_type", "event_category", "event_outcome", "severity"):
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"{name} = ?")
                args.append(value)
        if self.since_us is not None:
            clauses.append("ts_us >= ?")
            args.append(self.since_us)
        if self.until_us is not None:
            clauses.append("ts_us <= ?")
            args.append(self.until_us)
        if self.detail_key is not None and self.detail_value is not None:
            path = f'$."{self.detail_key}"'
            clauses.append(_DETAIL)
            args.extend((path, path, self.detail_value))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


class Store:
    """Audit events in SQLite: in memory for ``":memory:"``, else in the file named."""

    def __init__(self, db: str = ":memory:", *, chain: HashChain | None = None) -> None:
        self.chain = chain or HashChain()
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
        if db != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        # An emulator dropped without close() closes its database when collected, instead of
        # leaving it to the connection's own finaliser (which warns on Python 3.13).
        self._closer = weakref.finalize(self, self._conn.close)

    def insert(self, rows: Sequence[dict[str, Any]]) -> list[str]:
        """Store rows in one transaction, chaining each one's hash to its correlation's last."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                last: dict[str, str] = {}
                for row in rows:
                    cid = row["correlation_id"]
                    if cid not in last:
                        found = self._conn.execute(_HEAD, (cid,)).fetchone()
                        last[cid] = found[0] if found else ""
                    digest = self.chain.link(row, last[cid])
                    # actor_ip is hashed as sent, then stored as inet, which prints it back in
                    # canonical form (so a non-canonical address verifies as tampered).
                    row = {**row, "actor_ip": inet(row["actor_ip"])}
                    values = [row[name] for name in WRITTEN_COLUMNS]
                    # Rows change only through update(), so each is rendered when written.
                    rendered = dump_event(render({**row, **_fresh(digest, last[cid])}))
                    self._conn.execute(
                        _INSERT, (*values, digest, last[cid], self.chain.algorithm, rendered)
                    )
                    last[cid] = digest
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        return [row["event_id"] for row in rows]

    def count(self, filters: Filters) -> int:
        where, args = filters.where()
        with self._lock:
            row = self._conn.execute(f"SELECT COUNT(*) FROM audit_events{where}", args)
            return int(row.fetchone()[0])

    def select(self, filters: Filters, *, limit: int, offset: int) -> list[str]:
        """The matching events' JSON texts, in the service's order."""
        where, args = filters.where()
        sql = (
            f"SELECT rendered FROM audit_events{where} "
            "ORDER BY ts_us DESC, event_id DESC LIMIT ? OFFSET ?"
        )
        with self._lock:
            return [text for (text,) in self._conn.execute(sql, [*args, limit, offset])]

    def event_date(self, event_id: str) -> date | None:
        """The ``event_date`` of a stored event, or None when there is none with that id."""
        with self._lock:
            found = self._conn.execute(
                "SELECT event_date FROM audit_events WHERE event_id = ?", (event_id,)
            ).fetchone()
        return date.fromisoformat(found[0]) if found else None

    def rows(
        self,
        where: str = "",
        args: Sequence[Any] = (),
        *,
        order: str = "ts_us ASC, event_id ASC",
        limit: int | None = None,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Whole stored rows (column name to value) matching an SQL condition, in ``order``."""
        sql = f"SELECT * FROM audit_events{' WHERE ' + where if where else ''} ORDER BY {order}"
        params = list(args)
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            params += [limit, offset]
        with self._lock:
            cursor = self._conn.execute(sql, params)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, values, strict=True)) for values in cursor]

    def update(self, changes: Mapping[str, Mapping[str, Any]]) -> int:
        """Change stored columns (by event id) in one transaction, rendering each row again."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                for event_id, columns in changes.items():
                    cursor = self._conn.execute(
                        "SELECT * FROM audit_events WHERE event_id = ?", (event_id,)
                    )
                    names = [column[0] for column in cursor.description]
                    found = cursor.fetchone()
                    if found is None:
                        raise KeyError(event_id)  # noqa: TRY301 - the transaction rolls back
                    row = {**dict(zip(names, found, strict=True)), **columns}
                    shown = {
                        **row,
                        "event_hash": row["event_hash"] or "",
                        "previous_event_hash": row["previous_event_hash"] or "",
                    }
                    names_set = [*columns, "rendered"]
                    assignments = ", ".join(f"{name} = ?" for name in names_set)
                    self._conn.execute(
                        f"UPDATE audit_events SET {assignments} WHERE event_id = ?",
                        (*columns.values(), dump_event(render(shown)), event_id),
                    )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
        return len(changes)

    def close(self) -> None:
        with self._lock:
            self._closer()


def _fresh(event_hash: str, previous_event_hash: str) -> dict[str, Any]:
    """The columns the service sets on a new row."""
    return {
        "event_hash": event_hash,
        "previous_event_hash": previous_event_hash,
        "legal_hold": False,
        "legal_hold_reason": "",
        "legal_hold_placed_by": "",
        "legal_hold_placed_at": None,
    }
