"""Offline hash-chain verification: recompute each ``event_hash`` as Data Storage computes it.

Data Storage chains the events of a correlation id: each row's ``event_hash`` is
``SHA-256(previous_event_hash || json)`` (or HMAC-SHA256 with the server's secret key), where
``json`` is Go's ``encoding/json`` rendering of the stored row with the hash, partition-date and
legal-hold fields zeroed. The events the query API returns carry every hashed field, so the
chain of unkeyed rows can be checked here without trusting the server's verdict.

What this cannot see, and says so in its result:

* **Keyed rows.** Deployments with a hash key (Helm sets one, so production rows are keyed)
  can only be checked with that key; without it an intact keyed row looks exactly like a
  tampered unkeyed one, so such rows are reported as undetermined, not broken.
* **Exports.** An export lacks 15 of the hashed fields and cuts times to whole seconds; its
  events cannot be verified. Use query results (every page of the correlation id).
* **Fields this SDK does not know.** A newer server that adds a field to its event struct
  hashes it at a position this module cannot know; events carrying unknown fields are named.
* **The server's own false alarms.** The walk orders rows by ``(event_timestamp, event_id)``
  as the server does, so an event written after a later-stamped one (a late buffered flush,
  a dead-letter replay, clock skew, two events in the same microsecond) breaks here exactly as
  it breaks on the server; such breaks are marked ``reordered`` when the event still verifies
  against the previous hash it was written with.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from ._gojson import go_number, go_string, go_time, go_value
from .models import AuditEvent

__all__ = [
    "ChainBreak",
    "ChainVerification",
    "HashAlgorithm",
    "compute_event_hash",
    "hash_preimage",
    "verify_event_chain",
]

HashAlgorithm = Literal["sha256-unkeyed", "hmac-sha256"]
Verdict = Literal["intact", "broken", "undetermined"]
EventLike = AuditEvent | Mapping[str, Any]

_ZERO_UUID = "00000000-0000-0000-0000-000000000000"
#: The envelope's omitempty fields, in the order of the Go struct (shared with the emulator).
OMIT_EMPTY = (
    "resource_type",
    "resource_id",
    "namespace",
    "cluster_id",
    "severity",
    "duration_ms",
    "error_code",
    "error_message",
    "actor_id",
    "actor_type",
    "actor_ip",
)
#: The hashed envelope's last fields, zeroed before hashing (shared with the emulator).
ZEROED_TAIL = (
    ',"event_hash":"","previous_event_hash":"","legal_hold":false,'
    '"legal_hold_reason":"","legal_hold_placed_by":"","legal_hold_placed_at":null'
)
_LINK_MESSAGE = "previous_event_hash is not the event_hash of the event before it"
_HASH_MESSAGE = "event_hash does not match the event's content"
_REORDERED_MESSAGE = (
    "event_hash matches the content and the previous hash it was written with, but another "
    "event now sorts between them (a late or same-microsecond write, not a content change)"
)


def _as_event(event: EventLike) -> AuditEvent:
    return event if isinstance(event, AuditEvent) else AuditEvent.model_validate(event)


def hash_preimage(event: EventLike) -> bytes:
    """The bytes Data Storage hashes for ``event`` (after the previous hash).

    Go's struct order and JSON rendering: ``event_date``, the hashes and the legal-hold fields
    zeroed, empty optional fields left out, ``event_data`` keys sorted, numbers as float64.

    Args:
        event: an event as the query returns it (a model or its JSON object).

    .. versionadded:: 0.2.0
    """
    e = _as_event(event)
    parent_date = e.parent_event_date
    parts = [
        '{"event_id":"',
        str(e.event_id) if e.event_id is not None else _ZERO_UUID,
        '","event_timestamp":"',
        go_time(e.event_timestamp),
        '","event_date":null,"event_type":',
        go_string(e.event_type),
        ',"version":',
        go_string(e.version),
        ',"event_category":',
        go_string(str(e.event_category)),
        ',"event_action":',
        go_string(e.event_action),
        ',"event_outcome":',
        go_string(str(e.event_outcome)),
        ',"correlation_id":',
        go_string(e.correlation_id),
        ',"parent_event_id":',
        f'"{e.parent_event_id}"' if e.parent_event_id is not None else "null",
        ',"parent_event_date":',
        f'"{go_time(parent_date)}"' if parent_date is not None else "null",
    ]
    for name in OMIT_EMPTY:
        value = getattr(e, name)
        if value:  # Go's omitempty: "" and 0 are left out, as is a NULL column
            rendered = go_number(value) if name == "duration_ms" else go_string(value)
            parts.append(f',"{name}":{rendered}')
    parts += [
        ',"retention_days":',
        str(e.retention_days or 0),
        ',"is_sensitive":',
        "true" if e.is_sensitive else "false",
        ZEROED_TAIL,
        ',"event_data":',
        go_value(e.event_data),
        "}",
    ]
    return "".join(parts).encode()


def _digest(previous_hash: str, preimage: bytes, key: bytes | None) -> str:
    if key is None:
        return hashlib.sha256(previous_hash.encode() + preimage).hexdigest()
    return hmac.new(key, previous_hash.encode() + preimage, hashlib.sha256).hexdigest()


def _key_bytes(key: bytes | str | None) -> bytes | None:
    if key is None:
        return None
    if isinstance(key, str):
        key = key.encode()  # the service uses the secret's raw bytes, not a decoding of them
    if not isinstance(key, bytes) or not key:
        raise ValueError("key must be a non-empty bytes or str")
    return key


def compute_event_hash(
    event: EventLike, previous_hash: str, *, key: bytes | str | None = None
) -> str:
    """The ``event_hash`` Data Storage computes for ``event`` after ``previous_hash``.

    Args:
        event: an event as the query returns it (a model or its JSON object).
        previous_hash: the hash of the event before it in its chain; ``""`` for the first.
        key: the server's hash key (``hmac-sha256``); None for unkeyed ``sha256-unkeyed``.

    .. versionadded:: 0.2.0
    """
    return _digest(previous_hash, hash_preimage(event), _key_bytes(key))


@dataclass(frozen=True, slots=True)
class ChainBreak:
    """One failed check of the walk.

    Attributes:
        event_id: the event.
        correlation_id: its chain.
        event_timestamp: its timestamp.
        kind: ``"link"`` when its ``previous_event_hash`` is not the hash of the event before it
            in the walk; ``"hash"`` when its ``event_hash`` is not what its content gives.
        expected_hash: the hash recomputed from the content (``""`` for a link break).
        actual_hash: the stored ``event_hash`` (``previous_event_hash`` for a link break).
        previous_hash: the hash of the event before it in the walk (``""`` for the first).
        reordered: the event verifies against the previous hash it claims, so its content is
            intact and only the order moved (see the module's notes on false alarms).
        message: the reason, in words.

    .. versionadded:: 0.2.0
    """

    event_id: UUID | None
    correlation_id: str
    event_timestamp: datetime
    kind: Literal["link", "hash"]
    expected_hash: str
    actual_hash: str
    previous_hash: str
    reordered: bool
    message: str


@dataclass(frozen=True, slots=True)
class ChainVerification:
    """The outcome of an offline walk, computed without trusting the server's verdict.

    ``verdict`` is ``"intact"`` when every hashed event verified and linked, ``"broken"`` when
    at least one definite break was found, and ``"undetermined"`` when nothing is broken but
    some hashes could not be decided (keyed rows and no key). Ask :attr:`intact` for a plain
    yes; read :attr:`notes` for what could not be checked.

    Attributes:
        verdict: see above.
        correlation_ids: the chains walked (one per correlation id in the input).
        total_events: hashed events walked.
        verified_events: events whose hash matched their content and the walk.
        skipped_events: events without a hash (written without one), left out as the server
            leaves them out.
        breaks: every failed check, in walk order; a moved event usually appears twice.
        undecided_event_ids: events whose hash matches no formula available here (a keyed
            row, or a tampered one: without the key the two look the same).
        algorithms: how many events matched each algorithm.
        notes: what this result cannot tell, in words.

    .. versionadded:: 0.2.0
    """

    verdict: Verdict
    correlation_ids: tuple[str, ...]
    total_events: int
    verified_events: int
    skipped_events: int
    breaks: tuple[ChainBreak, ...] = ()
    undecided_event_ids: tuple[UUID | None, ...] = ()
    algorithms: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def intact(self) -> bool:
        """True only when every hashed event verified and linked (verdict ``"intact"``)."""
        return self.verdict == "intact"

    @property
    def broken_event_ids(self) -> list[UUID | None]:
        """The events with at least one break, each once, in walk order."""
        seen: dict[UUID | None, None] = {}
        for item in self.breaks:
            seen.setdefault(item.event_id, None)
        return list(seen)

    def __str__(self) -> str:
        text = (
            f"chain {self.verdict}: {self.verified_events} of {self.total_events} hashed events "
            f"verified, {len(self.breaks)} break(s), {len(self.undecided_event_ids)} undecided, "
            f"{self.skipped_events} without a hash"
        )
        return "\n".join([text, *(f"  note: {n}" for n in self.notes)])


@dataclass
class _Walk:
    key: bytes | None
    algorithm: Literal["auto", "sha256-unkeyed", "hmac-sha256"]
    verified: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)
    undecided: list[UUID | None] = field(default_factory=list)
    algorithms: dict[str, int] = field(default_factory=dict)

    def formulas(self) -> list[tuple[HashAlgorithm, bytes | None]]:
        found: list[tuple[HashAlgorithm, bytes | None]] = []
        if self.algorithm in ("auto", "sha256-unkeyed"):
            found.append(("sha256-unkeyed", None))
        if self.key is not None and self.algorithm in ("auto", "hmac-sha256"):
            found.append(("hmac-sha256", self.key))
        return found

    def match(self, previous: str, preimage: bytes, stored: str) -> tuple[str, str | None]:
        """The first recomputed hash, and the algorithm whose hash equals ``stored``."""
        first = ""
        for name, key in self.formulas():
            digest = _digest(previous, preimage, key)
            first = first or digest
            if hmac.compare_digest(digest, stored):
                return digest, name
        return first, None

    def chain(self, events: Sequence[AuditEvent]) -> None:
        previous = ""
        for e in events:
            stored = e.event_hash or ""
            claimed = e.previous_event_hash or ""
            preimage = hash_preimage(e)
            expected, algorithm = self.match(previous, preimage, stored)
            reordered = False
            if algorithm is None and claimed != previous:
                # Does it verify against the hash it was written after? Then only the order moved.
                reordered = self.match(claimed, preimage, stored)[1] is not None
            if claimed != previous:
                self.breaks.append(
                    ChainBreak(
                        e.event_id,
                        e.correlation_id,
                        e.event_timestamp,
                        "link",
                        "",
                        claimed,
                        previous,
                        reordered,
                        _REORDERED_MESSAGE if reordered else _LINK_MESSAGE,
                    )
                )
            if algorithm is not None:
                self.verified += 1
                self.algorithms[algorithm] = self.algorithms.get(algorithm, 0) + 1
            elif reordered or self.algorithm != "auto" or self.key is not None:
                self.breaks.append(
                    ChainBreak(
                        e.event_id,
                        e.correlation_id,
                        e.event_timestamp,
                        "hash",
                        expected,
                        stored,
                        previous,
                        reordered,
                        _REORDERED_MESSAGE if reordered else _HASH_MESSAGE,
                    )
                )
            else:
                self.undecided.append(e.event_id)
            previous = stored


def verify_event_chain(
    events: Iterable[EventLike],
    *,
    key: bytes | str | None = None,
    algorithm: Literal["auto", "sha256-unkeyed", "hmac-sha256"] = "auto",
) -> ChainVerification:
    """Verify the hash chains of ``events`` here, without trusting the server's verdict.

    Give it **every** event of the correlation id, as the query returns them (any order, any
    number of pages, duplicates allowed); a missing event breaks the chain at that point.
    Events of several correlation ids are walked as separate chains. Each chain is walked as
    the server walks it: events without a hash are skipped, the rest sorted by
    ``(event_timestamp, event_id)``, the first previous hash is ``""``.

    Args:
        events: the events (models, or JSON objects as the query returns them).
        key: the server's hash key (str or bytes, used as its raw bytes), for keyed rows.
        algorithm: ``"auto"`` tries the unkeyed formula, then the keyed one when ``key`` is
            given; without a key, an event matching neither is *undecided*, because a keyed
            row looks like a tampered one. ``"sha256-unkeyed"`` says the rows are known to be
            unkeyed (a mismatch is then a break); ``"hmac-sha256"`` needs ``key``.

    Returns:
        A :class:`ChainVerification`: ``intact``, ``broken`` or ``undetermined``, with every
        break and what could not be checked.

    Raises:
        ValueError: ``algorithm="hmac-sha256"`` without a key, or an empty key.
        pydantic.ValidationError: an event that is not an audit event.

    .. versionadded:: 0.2.0
    """
    if algorithm not in ("auto", "sha256-unkeyed", "hmac-sha256"):
        raise ValueError(f"algorithm must be auto, sha256-unkeyed or hmac-sha256: {algorithm!r}")
    secret = _key_bytes(key)
    if algorithm == "hmac-sha256" and secret is None:
        raise ValueError('algorithm="hmac-sha256" needs key=')
    chains: dict[str, list[AuditEvent]] = {}
    seen: set[UUID] = set()
    skipped = 0
    unknown_fields: set[str] = set()
    for item in events:
        e = _as_event(item)
        if e.event_id is not None:
            if e.event_id in seen:
                continue
            seen.add(e.event_id)
        if not e.event_hash:
            skipped += 1
            continue
        if e.model_extra:
            unknown_fields.update(e.model_extra)
        chains.setdefault(e.correlation_id, []).append(e)
    walk = _Walk(secret, algorithm)
    for chain in chains.values():
        chain.sort(key=lambda e: (e.event_timestamp, str(e.event_id or "")))
        walk.chain(chain)
    total = sum(len(c) for c in chains.values())
    verdict: Verdict = "broken" if walk.breaks else "undetermined" if walk.undecided else "intact"
    return ChainVerification(
        verdict=verdict,
        correlation_ids=tuple(chains),
        total_events=total,
        verified_events=walk.verified,
        skipped_events=skipped,
        breaks=tuple(walk.breaks),
        undecided_event_ids=tuple(walk.undecided),
        algorithms=dict(walk.algorithms),
        notes=_notes(walk, total, skipped, unknown_fields, secret is not None),
    )


def _notes(
    walk: _Walk, total: int, skipped: int, unknown: set[str], keyed: bool
) -> tuple[str, ...]:
    notes = []
    if not total:
        notes.append("no hashed event was given: there was nothing to verify")
    if walk.undecided:
        if len(walk.undecided) == total:
            notes.append(
                "no event matches the unkeyed formula: the rows are most likely keyed "
                "(HMAC-SHA256, the production default); pass key= or ask the server "
                "(verify_audit_chain)"
            )
        else:
            notes.append(
                f"{len(walk.undecided)} event(s) match no unkeyed hash: keyed rows or tampered "
                "ones, which cannot be told apart without the key"
            )
    if unknown:
        notes.append(
            "events carry fields this SDK does not know ("
            + ", ".join(sorted(unknown))
            + "); a server that hashes them gives hashes this walk cannot reproduce"
        )
    if skipped:
        notes.append(f"{skipped} event(s) without a hash were not walked, as the server does")
    if any(b.reordered for b in walk.breaks):
        notes.append(
            "some breaks are reorderings (an event stored after a later-stamped one), which the "
            "server reports as tampering too; the content of those events is intact"
        )
    if keyed and not walk.algorithms.get("hmac-sha256") and walk.algorithms:
        notes.append("a key was given but every verified event is unkeyed")
    return tuple(notes)
