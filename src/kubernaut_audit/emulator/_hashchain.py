"""The hash chain as the service computes it, over the emulator's stored rows.

At write time each row gets ``event_hash = SHA-256(previous || json)`` (HMAC-SHA256 with the
configured key), ``json`` being Go's rendering of the row with the hash, date and legal-hold
fields zeroed; the previous hash is that of the correlation id's row with the greatest
``(event_timestamp, event_id)`` (not the last one inserted). Verification recomputes from the
stored columns with each row's own ``hash_algorithm``. The bytes are the ones
:func:`kubernaut_audit.compute_event_hash` recomputes from a query result; the golden vectors
test both.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import date
from typing import Any, Final

from kubernaut_audit._chain import OMIT_EMPTY, ZEROED_TAIL
from kubernaut_audit._gojson import go_document, go_number, go_string

from ._times import format_midnight, format_timestamp

SHA256_UNKEYED: Final = "sha256-unkeyed"
HMAC_SHA256: Final = "hmac-sha256"


class ChainError(Exception):
    """A row the service cannot verify (keyed with no key configured, unknown algorithm)."""


def row_preimage(row: Mapping[str, Any]) -> bytes:
    """The bytes the service hashes for a stored row (after the previous hash)."""
    parent_id = row["parent_event_id"]
    parent_date = row["parent_event_date"]
    parts = [
        '{"event_id":"',
        row["event_id"],
        '","event_timestamp":"',
        format_timestamp(row["ts_us"]),
        '","event_date":null,"event_type":',
        go_string(row["event_type"]),
        ',"version":',
        go_string(row["version"]),
        ',"event_category":',
        go_string(row["event_category"]),
        ',"event_action":',
        go_string(row["event_action"]),
        ',"event_outcome":',
        go_string(row["event_outcome"]),
        ',"correlation_id":',
        go_string(row["correlation_id"]),
        ',"parent_event_id":',
        f'"{parent_id}"' if parent_id else "null",
        ',"parent_event_date":',
        f'"{format_midnight(date.fromisoformat(parent_date))}"' if parent_date else "null",
    ]
    for name in OMIT_EMPTY:
        value = row[name]
        if value:
            rendered = go_number(value) if name == "duration_ms" else go_string(value)
            parts.append(f',"{name}":{rendered}')
    data = row["event_data"]
    parts += [
        ',"retention_days":',
        str(row["retention_days"] or 0),
        ',"is_sensitive":',
        "true" if row["is_sensitive"] else "false",
        ZEROED_TAIL,
        ',"event_data":',
        go_document(data) if data is not None else "null",
        "}",
    ]
    return "".join(parts).encode()


class HashChain:
    """The write-time algorithm (unkeyed, or HMAC with ``key``) and verification per row."""

    def __init__(self, key: bytes | None = None) -> None:
        if key is not None and not key:
            raise ValueError("hash_key must not be empty")
        self._key = key

    def __repr__(self) -> str:
        return f"HashChain(algorithm={self.algorithm!r})"  # never the key

    @property
    def algorithm(self) -> str:
        """What new rows are hashed with."""
        return HMAC_SHA256 if self._key is not None else SHA256_UNKEYED

    def link(self, row: Mapping[str, Any], previous: str) -> str:
        """The hash of a new row written after ``previous``."""
        return _digest(self._key, previous, row_preimage(row))

    def expected(self, row: Mapping[str, Any], previous: str) -> str:
        """The hash a stored row should have after ``previous``, by its own algorithm."""
        algorithm = row.get("hash_algorithm") or SHA256_UNKEYED
        if algorithm == SHA256_UNKEYED:
            return _digest(None, previous, row_preimage(row))
        if algorithm == HMAC_SHA256:
            if self._key is None:
                raise ChainError(f"event {row['event_id']} is keyed but no hash key is configured")
            return _digest(self._key, previous, row_preimage(row))
        raise ChainError(f"event {row['event_id']} has unknown hash_algorithm {algorithm!r}")


def _digest(key: bytes | None, previous: str, preimage: bytes) -> str:
    if key is None:
        return hashlib.sha256(previous.encode() + preimage).hexdigest()
    return hmac.new(key, previous.encode() + preimage, hashlib.sha256).hexdigest()
