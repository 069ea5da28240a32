"""Offline hash-chain verification: golden vectors, Go's JSON rendering, and the walk."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from kubernaut_audit import AuditEvent, compute_event_hash, verify_event_chain
from kubernaut_audit._chain import hash_preimage
from kubernaut_audit._gojson import go_document, go_float, go_string, go_time, go_value

GOLDEN = json.loads((Path(__file__).parent / "golden" / "hash_vectors.json").read_text())
VECTORS = GOLDEN["vectors"]
KEY = GOLDEN["hmac_key"]
T0 = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _ids(vector: dict[str, Any]) -> str:
    return str(vector["name"])


# -- golden vectors -------------------------------------------------------------------------


def test_golden_vectors_cover_the_documented_cases() -> None:
    """The vectors include the fact sheet's example and every case the issue names."""
    names = {v["name"] for v in VECTORS}
    assert names >= {
        "fact_sheet_example",
        "html",
        "floats",
        "integers",
        "non_ascii",
        "nested",
        "optional_present",
        "optional_absent",
    }


@pytest.mark.parametrize("vector", VECTORS, ids=_ids)
def test_golden_vector_is_self_consistent(vector: dict[str, Any]) -> None:
    """Each vector's hash is the SHA-256 of its preimage (the vector file is not corrupt)."""
    assert hashlib.sha256(vector["preimage"].encode()).hexdigest() == vector["sha256"]


@pytest.mark.parametrize("vector", VECTORS, ids=_ids)
def test_preimage_matches_golden_vector(vector: dict[str, Any]) -> None:
    """The bytes hashed for an event are exactly the documented Go rendering."""
    assert hash_preimage(vector["event"]).decode() == vector["preimage"]


@pytest.mark.parametrize("vector", VECTORS, ids=_ids)
def test_unkeyed_hash_matches_golden_vector(vector: dict[str, Any]) -> None:
    """The unkeyed hash of a first event equals the vector's."""
    assert compute_event_hash(vector["event"], "") == vector["sha256"]


@pytest.mark.parametrize("vector", [v for v in VECTORS if "hmac_sha256" in v], ids=_ids)
def test_keyed_hash_matches_golden_vector(vector: dict[str, Any]) -> None:
    """The HMAC-SHA256 hash with the vectors' key equals the vector's."""
    assert compute_event_hash(vector["event"], "", key=KEY) == vector["hmac_sha256"]


def test_model_and_mapping_hash_alike() -> None:
    """An AuditEvent model hashes exactly as the JSON object it was decoded from."""
    for vector in VECTORS:
        model = AuditEvent.model_validate(vector["event"])
        assert compute_event_hash(model, "") == vector["sha256"]


def test_previous_hash_is_prefixed_as_ascii_hex() -> None:
    """A later event's hash covers the previous hash's hex text, then the preimage."""
    vector = VECTORS[0]
    previous = "ab" * 32
    expected = hashlib.sha256((previous + vector["preimage"]).encode()).hexdigest()
    assert compute_event_hash(vector["event"], previous) == expected


def test_key_is_used_as_its_raw_bytes() -> None:
    """A str key and its UTF-8 bytes give the same HMAC (the secret is not decoded)."""
    event = VECTORS[1]["event"]
    assert compute_event_hash(event, "", key=KEY) == compute_event_hash(event, "", key=KEY.encode())


# -- Go's JSON rendering --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2.5, "2.5"),
        (1e-7, "1e-7"),
        (1.5e-10, "1.5e-10"),
        (1e-6, "0.000001"),
        (9.99e-7, "9.99e-7"),
        (1e21, "1e+21"),
        (1e20, "100000000000000000000"),
        (1e16, "10000000000000000"),
        (3.0, "3"),
        (-0.0, "-0"),
        (0.1, "0.1"),
        (123.456, "123.456"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (5e-324, "5e-324"),
    ],
)
def test_go_float_literals(value: float, text: str) -> None:
    """Floats are written as Go's encoding/json writes a float64."""
    assert go_float(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("a<b>&c", '"a\\u003cb\\u003e\\u0026c"'),
        ("\u2028\u2029", '"\\u2028\\u2029"'),
        ("é漢😀", '"é漢😀"'),
        ('q"\\', '"q\\"\\\\"'),
        ("\n\t\r\x01\x7f", '"\\n\\t\\r\\u0001\x7f"'),
        ("bad\ud800", '"bad\\ufffd"'),
    ],
)
def test_go_string_literals(value: str, text: str) -> None:
    """Strings are escaped as Go escapes them, non-ASCII raw, invalid text as \\ufffd."""
    assert go_string(value) == text


def test_go_value_sorts_nested_keys() -> None:
    """Objects at every depth come out with their keys sorted, arrays in order."""
    assert go_value({"b": {"z": 1, "a": [{"d": 1, "c": 2}]}, "a": None}) == (
        '{"a":null,"b":{"a":[{"c":2,"d":1}],"z":1}}'
    )


def test_go_time_is_utc_with_trimmed_fraction() -> None:
    """Timestamps are UTC, RFC 3339, with the fraction's trailing zeros trimmed."""
    moment = datetime(2026, 3, 4, 7, 6, 7, 100000, tzinfo=timezone(timedelta(hours=2)))
    assert go_time(moment) == "2026-03-04T05:06:07.1Z"
    assert go_time(moment.replace(microsecond=0)) == "2026-03-04T05:06:07Z"


def test_go_time_refuses_naive_datetimes() -> None:
    """A naive datetime names no instant and is refused."""
    with pytest.raises(ValueError, match="naive"):
        go_time(datetime(2026, 1, 1))


def test_go_float_refuses_nan() -> None:
    """NaN has no JSON form."""
    with pytest.raises(ValueError, match="no JSON form"):
        go_float(float("nan"))


# -- the walk -------------------------------------------------------------------------------


def _event(n: int, *, cid: str = "rr-walk", at: datetime | None = None) -> dict[str, Any]:
    return {
        "event_id": str(uuid.UUID(int=n, version=4)),
        "event_timestamp": (at or T0 + timedelta(seconds=n)).isoformat(),
        "event_date": "2026-03-04",
        "event_type": "gateway.signal.received",
        "version": "1.0",
        "event_category": "gateway",
        "event_action": "received",
        "event_outcome": "success",
        "correlation_id": cid,
        "parent_event_id": None,
        "parent_event_date": None,
        "resource_type": "gateway",
        "resource_id": cid,
        "severity": "info",
        "actor_id": "gateway-service",
        "actor_type": "service",
        "retention_days": 2555,
        "is_sensitive": False,
        "legal_hold": False,
        "legal_hold_reason": "",
        "legal_hold_placed_by": "",
        "legal_hold_placed_at": None,
        "event_data": {"event_type": "gateway.signal.received", "n": n, "w": n / 4},
    }


def _chain(events: list[dict[str, Any]], *, key: str | None = None) -> list[dict[str, Any]]:
    """Hash events in the order given, each after the previous one, as the writer does."""
    previous = ""
    for event in events:
        event["previous_event_hash"] = previous
        event["event_hash"] = previous = compute_event_hash(event, previous, key=key)
    return events


def test_intact_chain_verifies() -> None:
    """An untouched chain is intact: every event verified, no break, no note of doubt."""
    result = verify_event_chain(_chain([_event(n) for n in range(5)]))
    assert (result.verdict, result.verified_events, result.breaks) == ("intact", 5, ())
    assert result.intact
    assert result.algorithms == {"sha256-unkeyed": 5}


def test_input_order_and_duplicates_do_not_matter() -> None:
    """Events are deduplicated by id and sorted by (timestamp, id), as pages may repeat."""
    events = _chain([_event(n) for n in range(6)])
    shuffled = [*events, *events[:3]]
    random.Random(3).shuffle(shuffled)
    result = verify_event_chain(shuffled)
    assert (result.verdict, result.total_events) == ("intact", 6)


def test_changed_content_breaks_only_that_event() -> None:
    """A changed payload flags that event's hash once; its successor still links."""
    events = _chain([_event(n) for n in range(5)])
    events[2]["event_data"]["n"] = 99
    result = verify_event_chain(events, algorithm="sha256-unkeyed")
    assert result.verdict == "broken"
    assert [(b.event_id, b.kind, b.reordered) for b in result.breaks] == [
        (uuid.UUID(events[2]["event_id"]), "hash", False)
    ]
    assert result.breaks[0].expected_hash == compute_event_hash(events[2], events[1]["event_hash"])


def test_changed_content_without_a_key_is_undecided() -> None:
    """In auto mode without a key a changed row could be a keyed one: undecided, not intact."""
    events = _chain([_event(n) for n in range(3)])
    events[1]["event_data"]["n"] = 99
    result = verify_event_chain(events)
    assert (result.verdict, result.undecided_event_ids) == (
        "undetermined",
        (uuid.UUID(events[1]["event_id"]),),
    )
    assert "cannot be told apart" in result.notes[0]


def test_changed_previous_hash_alone_is_one_link_break() -> None:
    """Tampering with previous_event_hash only (not hashed) gives one link break."""
    events = _chain([_event(n) for n in range(3)])
    events[1]["previous_event_hash"] = "0" * 64
    result = verify_event_chain(events)
    assert [(b.kind, b.expected_hash, b.actual_hash) for b in result.breaks] == [
        ("link", "", "0" * 64)
    ]
    assert result.verified_events == 3


def test_removed_event_breaks_the_next_link() -> None:
    """A missing event (deleted, or a page not fetched) breaks its successor's link."""
    events = _chain([_event(n) for n in range(4)])
    result = verify_event_chain([events[0], events[1], events[3]])
    assert result.verdict == "broken"
    assert result.breaks[0].event_id == uuid.UUID(events[3]["event_id"])
    assert result.breaks[0].kind == "link"


def test_late_insert_is_reported_as_a_reordering() -> None:
    """An event written after a later-stamped one breaks twice, each break marked reordered."""
    first, late_stamped, early_stamped = _event(1), _event(3), _event(2)
    # Written in this order: the third write carries the earliest timestamp of the two.
    events = _chain([first, late_stamped, early_stamped])
    result = verify_event_chain(events)
    assert result.verdict == "broken"
    assert [(b.kind, b.reordered) for b in result.breaks] == [
        ("link", True),
        ("hash", True),
        ("link", True),
        ("hash", True),
    ]
    assert result.broken_event_ids == [
        uuid.UUID(early_stamped["event_id"]),
        uuid.UUID(late_stamped["event_id"]),
    ]
    assert any("reorderings" in note for note in result.notes)


def test_same_microsecond_events_can_be_reordered() -> None:
    """Two events of one microsecond are walked by event_id, whatever their write order."""
    a, b = _event(9, at=T0), _event(2, at=T0)
    result = verify_event_chain(_chain([a, b]))  # written a then b; walked b (id 2) then a
    assert result.verdict == "broken"
    assert all(item.reordered for item in result.breaks)


def test_keyed_rows_without_key_are_undetermined() -> None:
    """HMAC rows checked without the key are undecided, never reported as tampered."""
    result = verify_event_chain(_chain([_event(n) for n in range(3)], key=KEY))
    assert (result.verdict, result.breaks, len(result.undecided_event_ids)) == (
        "undetermined",
        (),
        3,
    )
    assert not result.intact
    assert "most likely keyed" in result.notes[0]


def test_keyed_rows_with_key_are_intact() -> None:
    """With the server's key, HMAC rows verify."""
    result = verify_event_chain(_chain([_event(n) for n in range(3)], key=KEY), key=KEY)
    assert (result.verdict, result.algorithms) == ("intact", {"hmac-sha256": 3})


def test_wrong_key_is_a_break() -> None:
    """With a key given, a row matching neither formula is a definite break."""
    events = _chain([_event(n) for n in range(2)], key=KEY)
    result = verify_event_chain(events, key="another key")
    assert result.verdict == "broken"
    assert [b.kind for b in result.breaks] == ["hash", "hash"]


def test_mixed_chain_after_key_rollout_verifies_with_key() -> None:
    """A chain that went from unkeyed to keyed rows verifies row by row."""
    events = [_event(n) for n in range(4)]
    _chain(events[:2])
    previous = events[1]["event_hash"]
    for event in events[2:]:
        event["previous_event_hash"] = previous
        event["event_hash"] = previous = compute_event_hash(event, previous, key=KEY)
    result = verify_event_chain(events, key=KEY)
    assert result.algorithms == {"sha256-unkeyed": 2, "hmac-sha256": 2}
    assert result.intact


def test_declared_unkeyed_turns_doubt_into_a_break() -> None:
    """algorithm="sha256-unkeyed" says rows are unkeyed: a mismatch is then a break."""
    events = _chain([_event(n) for n in range(2)], key=KEY)
    result = verify_event_chain(events, algorithm="sha256-unkeyed")
    assert result.verdict == "broken"


def test_hmac_algorithm_needs_a_key() -> None:
    """algorithm="hmac-sha256" without key= is refused before any work."""
    with pytest.raises(ValueError, match="needs key"):
        verify_event_chain([], algorithm="hmac-sha256")


def test_unhashed_events_are_skipped() -> None:
    """Events without a hash are counted as skipped and left out of the walk."""
    events = _chain([_event(n) for n in range(3)])
    unhashed = {**_event(7), "event_hash": "", "previous_event_hash": ""}
    result = verify_event_chain([*events, unhashed])
    assert (result.verdict, result.skipped_events, result.total_events) == ("intact", 1, 3)


def test_correlation_ids_are_separate_chains() -> None:
    """Events of two correlation ids are two chains, each starting from an empty hash."""
    a = _chain([_event(n, cid="rr-a") for n in range(2)])
    b = _chain([_event(n + 10, cid="rr-b") for n in range(2)])
    result = verify_event_chain([*a, *b])
    assert (result.verdict, set(result.correlation_ids)) == ("intact", {"rr-a", "rr-b"})


def test_unknown_fields_are_named_in_the_notes() -> None:
    """Fields this SDK does not know are reported: a newer server may hash them."""
    events = _chain([_event(0)])
    events[0]["trace_id"] = "abc"
    result = verify_event_chain(events)
    assert any("trace_id" in note for note in result.notes)


def test_empty_input_says_there_was_nothing_to_verify() -> None:
    """No hashed event is reported as such, not silently as a verified chain."""
    result = verify_event_chain([])
    assert result.total_events == 0
    assert any("nothing" in note for note in result.notes)


def test_summary_names_the_verdict_and_counts() -> None:
    """str() of a result is a one-glance summary with its notes."""
    result = verify_event_chain(_chain([_event(n) for n in range(2)], key=KEY))
    text = str(result)
    assert text.startswith("chain undetermined: 0 of 2 hashed events verified")
    assert "note:" in text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2.5, "2.5"),
        (1e-7, "1e-7"),
        (None, "null"),
        (12345678901234567890, "12345678901234567000"),
        ([1.0, "x<"], '[1,"x\\u003c"]'),
        ({"s": "1.5e3", "n": 1e16}, '{"n":10000000000000000,"s":"1.5e3"}'),
    ],
)
def test_go_value_scalars_and_number_like_strings(value: object, text: str) -> None:
    """Top-level scalars, floats in arrays, and digits inside strings are each rendered right."""
    assert go_value(value) == text


def test_go_document_accepts_spaced_json() -> None:
    """A document with spaces (as PostgreSQL prints JSONB) renders as Go's compact form."""
    assert go_document('{"b": 3.0, "a": [1e-07, "x"]}') == '{"a":[1e-7,"x"],"b":3}'
