"""The shape of what the service returns: envelope, field order, omissions, normalisation."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from emulator_helpers import EVENTS, ago, event, stamp

from kubernaut_audit.emulator import Emulator

pytestmark = pytest.mark.anyio

HEAD = [
    "event_id",
    "event_timestamp",
    "event_date",
    "event_type",
    "version",
    "event_category",
    "event_action",
    "event_outcome",
    "correlation_id",
    "parent_event_id",
    "parent_event_date",
]
TAIL = [
    "retention_days",
    "is_sensitive",
    "event_hash",
    "previous_event_hash",
    "legal_hold",
    "legal_hold_reason",
    "legal_hold_placed_by",
    "legal_hold_placed_at",
    "event_data",
]


async def _only(emulator: Emulator, client: httpx.AsyncClient, cid: str, **kw: Any) -> Any:
    emulator.insert_events([event(cid, **kw)])
    response = await client.get(EVENTS, params={"correlation_id": cid, "limit": 1})
    return response.json()["data"][0]


async def test_empty_result_has_empty_data_list(client: httpx.AsyncClient) -> None:
    """No match gives data [] and typed application/json."""
    response = await client.get(EVENTS, params={"correlation_id": "none", "limit": 5})
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "data": [],
        "pagination": {"limit": 5, "offset": 0, "total": 0, "has_more": False},
    }


async def test_minimal_event_field_order(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """A minimal event lists the fixed head, the defaults filled at write time, then the tail."""
    item = await _only(emulator, client, cid, namespace=None)
    defaults = ["resource_type", "resource_id", "severity", "actor_id", "actor_type"]
    assert list(item) == HEAD + defaults + TAIL


async def test_full_event_field_order(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """Optional fields appear, when set, in the service's order."""
    optional = {
        "resource_type": "Pod",
        "resource_id": "p-1",
        "namespace": "ns",
        "cluster_id": "c-1",
        "severity": "warning",
        "duration_ms": 12,
        "error_code": "E1",
        "error_message": "boom",
        "actor_id": "me",
        "actor_type": "user",
        "actor_ip": "10.0.0.1",
    }
    item = await _only(emulator, client, cid, **optional)
    assert list(item) == HEAD + list(optional) + TAIL
    assert {name: item[name] for name in optional} == optional


async def test_empty_strings_are_omitted(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """Empty optional strings are left out on read."""
    item = await _only(emulator, client, cid, cluster_id="", error_code="", namespace="")
    assert not {"cluster_id", "error_code", "namespace"} & set(item)


async def test_severity_defaults_to_info(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """An omitted severity reads back as info."""
    item = await _only(emulator, client, cid)
    assert item["severity"] == "info"


async def test_null_severity_is_absent(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """A severity written as null is absent on read."""
    item = await _only(emulator, client, cid, severity=None)
    assert "severity" not in item


async def test_fixed_fields_when_unset(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """Parents are null, legal hold is off with empty strings, the first hash link is empty."""
    item = await _only(emulator, client, cid)
    assert item["parent_event_id"] is None
    assert item["parent_event_date"] is None
    assert item["legal_hold"] is False
    assert item["legal_hold_reason"] == ""
    assert item["legal_hold_placed_by"] == ""
    assert item["legal_hold_placed_at"] is None
    assert item["previous_event_hash"] == ""
    assert item["is_sensitive"] is False


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("2026-01-02T03:04:05.123456Z", "2026-01-02T03:04:05.123456Z"),
        ("2026-01-02T03:04:05.120000Z", "2026-01-02T03:04:05.12Z"),
        ("2026-01-02T03:04:05.000Z", "2026-01-02T03:04:05Z"),
        ("2026-01-02T05:04:05.5+02:00", "2026-01-02T03:04:05.5Z"),
        ("2026-01-02T03:04:05.1234567Z", "2026-01-02T03:04:05.123456Z"),
    ],
)
async def test_event_timestamp_format(
    emulator: Emulator, client: httpx.AsyncClient, cid: str, written: str, read: str
) -> None:
    """event_timestamp reads back in UTC, microseconds, trailing zeros trimmed, with Z."""
    item = await _only(emulator, client, cid, event_timestamp=written)
    assert item["event_timestamp"] == read
    assert item["event_date"] == "2026-01-02"


async def test_event_date_is_the_utc_day(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """event_date is the UTC date of event_timestamp."""
    item = await _only(emulator, client, cid, event_timestamp="2026-01-02T01:00:00+03:00")
    assert item["event_date"] == "2026-01-01"


async def test_parent_event_date_reads_as_midnight(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """parent_event_date reads back as a full timestamp at midnight UTC."""
    parent = "8a0f6bb1-2d7e-4d43-9a57-5a1f0b1c3d4e"
    item = await _only(
        emulator,
        client,
        cid,
        parent_event_id=parent,
        parent_event_date="2026-01-02T17:45:12.5Z",
    )
    assert item["parent_event_id"] == parent
    assert item["parent_event_date"] == "2026-01-02T00:00:00Z"


async def test_event_data_is_normalised(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """event_data keys come back sorted, numbers through float64, date-times without fractions."""
    data = {
        "event_type": "gateway.signal.received",
        "zeta": 2.50,
        "alpha": {"b": 1, "a": 9007199254740993},
        "at": "2026-01-02T03:04:05.678Z",
        "when": "2026-01-02T03:04:05.678+02:00",
    }
    emulator.insert_events([event(cid, event_data=data)])
    response = await client.get(EVENTS, params={"correlation_id": cid, "limit": 1})
    raw = response.text.split('"event_data":', 1)[1]
    assert raw.startswith('{"alpha":{"a":9007199254740992,"b":1},"at":"2026-01-02T03:04:05Z"')
    item = response.json()["data"][0]["event_data"]
    assert item["zeta"] == 2.5
    assert item["when"] == "2026-01-02T03:04:05+02:00"


async def test_event_data_keeps_unknown_keys(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """The emulator keeps event_data keys (it cannot know each payload schema)."""
    data = {"event_type": "brand.new.type", "anything": [1, {"x": None}]}
    item = await _only(emulator, client, cid, event_type="brand.new.type", event_data=data)
    assert item["event_data"] == data


async def test_hash_chain_links_events_of_a_correlation_id(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """Each event's previous_event_hash is the hash of the one stored before it."""
    emulator.insert_events([event(cid, event_timestamp=ago(seconds=3 - i)) for i in range(3)])
    response = await client.get(EVENTS, params={"correlation_id": cid, "limit": 3})
    oldest_first = list(reversed(response.json()["data"]))
    assert oldest_first[0]["previous_event_hash"] == ""
    for before, after in itertools.pairwise(oldest_first):
        assert after["previous_event_hash"] == before["event_hash"]
    assert all(len(item["event_hash"]) == 64 for item in oldest_first)


async def test_hash_chain_is_per_correlation_id(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """The first event of a correlation id starts a chain even after other writes."""
    emulator.insert_events([event("other-" + cid)])
    item = await _only(emulator, client, cid)
    assert item["previous_event_hash"] == ""
    assert item["event_hash"] != hashlib.sha256(b"").hexdigest()


async def test_large_responses_are_chunked(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """A body past Go's 2 KiB buffer goes out without Content-Length."""
    emulator.insert_events([event(cid) for _ in range(20)])
    large = await client.get(EVENTS, params={"correlation_id": cid, "limit": 20})
    small = await client.get(EVENTS, params={"correlation_id": "none", "limit": 1})
    assert "content-length" not in large.headers
    assert len(large.json()["data"]) == 20
    assert small.headers["content-length"] == str(len(small.content))


async def test_len_data_agrees_with_total_without_faults(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """Absent concurrent writes, total counts what the pages return."""
    emulator.insert_events([event(cid) for _ in range(3)])
    body = (await client.get(EVENTS, params={"correlation_id": cid, "limit": 10})).json()
    assert body["pagination"]["total"] == len(body["data"]) == 3


async def test_old_rows_can_be_planted(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """insert_events skips the timestamp window so tests can plant old rows."""
    old = stamp(datetime.now(UTC) - timedelta(days=30))
    [event_id] = emulator.insert_events([event(cid, event_timestamp=old)])
    body = (await client.get(EVENTS, params={"correlation_id": cid, "limit": 1})).json()
    assert body["data"][0]["event_id"] == event_id
