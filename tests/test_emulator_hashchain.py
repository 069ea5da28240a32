"""The emulator's hash chain equals the service's: golden vectors, write-time links, HMAC."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from trail_samples import VERIFY, base_time, new_cid, plain_events

from kubernaut_audit import compute_event_hash, verify_event_chain
from kubernaut_audit.emulator import Emulator
from kubernaut_audit.emulator._hashchain import HashChain, row_preimage
from kubernaut_audit.emulator._times import to_micros

pytestmark = pytest.mark.anyio

GOLDEN = json.loads((Path(__file__).parent / "golden" / "hash_vectors.json").read_text())
KEY = GOLDEN["hmac_key"]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator()
    yield emu
    emu.close()


@pytest.fixture
async def http(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://ds") as client:
        yield client


def _row(event: dict[str, Any]) -> dict[str, Any]:
    """The stored row a queried event was rendered from."""
    stamp = datetime.fromisoformat(event["event_timestamp"].replace("Z", "+00:00"))
    parent = event["parent_event_date"]
    return {
        **{
            k: event.get(k)
            for k in [
                "event_id",
                "event_type",
                "version",
                "event_category",
                "event_action",
                "event_outcome",
                "correlation_id",
                "parent_event_id",
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
                "retention_days",
                "is_sensitive",
            ]
        },
        "ts_us": to_micros(stamp),
        "parent_event_date": parent[:10] if parent else None,
        "event_data": json.dumps(event["event_data"]),
    }


@pytest.mark.parametrize("vector", GOLDEN["vectors"], ids=lambda v: str(v["name"]))
def test_stored_row_hashes_as_golden_vector(vector: dict[str, Any]) -> None:
    """The emulator hashes a stored row to the golden preimage and hashes, unkeyed and keyed."""
    row = _row(vector["event"])
    assert row_preimage(row).decode() == vector["preimage"]
    assert HashChain().link(row, "") == vector["sha256"]
    if "hmac_sha256" in vector:
        assert HashChain(KEY.encode()).link(row, "") == vector["hmac_sha256"]


async def _query(http: httpx.AsyncClient, cid: str) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/audit/events", params={"correlation_id": cid, "limit": 1000})
    data: list[dict[str, Any]] = response.json()["data"]
    return sorted(data, key=lambda e: (e["event_timestamp"], e["event_id"]))


async def test_written_events_hash_as_the_offline_verifier_recomputes(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """Each written event's stored hash is what compute_event_hash gives from its query form."""
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 4))
    events = await _query(http, cid)
    previous = ""
    for event in events:
        assert event["previous_event_hash"] == previous
        assert event["event_hash"] == compute_event_hash(event, previous)
        previous = event["event_hash"]


async def test_writes_over_http_chain_in_order(http: httpx.AsyncClient) -> None:
    """Events posted one by one and in a batch form one verified chain."""
    cid = new_cid()
    events = plain_events(cid, 5)
    for event in events[:2]:
        assert (await http.post("/api/v1/audit/events", json=event)).status_code == 201
    assert (await http.post("/api/v1/audit/events/batch", json=events[2:])).status_code == 201
    assert verify_event_chain(await _query(http, cid), algorithm="sha256-unkeyed").intact


async def test_head_is_greatest_timestamp_not_last_write(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """A new event links to the latest-stamped event of its chain, not to the last one written."""
    cid = new_cid()
    t = base_time()
    late, early, latest = plain_events(cid, 3, t)
    late["event_timestamp"] = (t + timedelta(seconds=2)).isoformat()
    early["event_timestamp"] = t.isoformat()
    latest["event_timestamp"] = (t + timedelta(seconds=3)).isoformat()
    for event in (late, early, latest):
        emulator.insert_events([event])
    by_name = {e["event_data"]["signal_name"]: e for e in await _query(http, cid)}
    assert by_name["Alert2"]["previous_event_hash"] == by_name["Alert0"]["event_hash"]
    assert by_name["Alert1"]["previous_event_hash"] == by_name["Alert0"]["event_hash"]


async def test_late_insert_breaks_the_chain_twice(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """An event stored after a later-stamped one is reported twice, like its successor."""
    cid = new_cid()
    t = base_time()
    first, late = plain_events(cid, 2, t)
    emulator.insert_events([first])
    emulator.insert_events([{**late, "event_timestamp": (t - timedelta(seconds=5)).isoformat()}])
    emulator.insert_events(plain_events(cid, 1, t + timedelta(seconds=10)))
    body = (await http.post(VERIFY, json={"correlation_id": cid})).json()
    assert body["is_valid"] is False
    ids = [entry["event_id"] for entry in body["tampered_events"]]
    assert len(ids) == 4
    assert ids[0] == ids[1] != ids[2] == ids[3]


async def test_hmac_key_chains_keyed_rows() -> None:
    """With a hash key, rows are HMAC-SHA256: the key verifies them, the unkeyed formula not."""
    emulator = Emulator(hash_key=KEY)
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 3))
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://ds") as http:
        events = await _query(http, cid)
        server = (await http.post(VERIFY, json={"correlation_id": cid})).json()
    emulator.close()
    assert server["is_valid"] is True
    assert verify_event_chain(events, key=KEY).algorithms == {"hmac-sha256": 3}
    assert verify_event_chain(events).verdict == "undetermined"


def test_hash_chain_repr_hides_the_key() -> None:
    """The chain's repr names the algorithm, never the key."""
    assert "secret" not in repr(HashChain(b"secret"))
    assert "hmac-sha256" in repr(HashChain(b"secret"))


def test_timestamps_hash_in_utc_microseconds(emulator: Emulator) -> None:
    """A write with an offset and nanoseconds hashes its UTC microsecond form."""
    cid = new_cid()
    event = plain_events(cid, 1)[0]
    moment = datetime.now(UTC).replace(microsecond=123456)
    event["event_timestamp"] = moment.astimezone().isoformat()
    [event_id] = emulator.insert_events([event])
    [row] = emulator._state.store.rows("event_id = ?", [event_id])
    assert f'"event_timestamp":"{moment.strftime("%Y-%m-%dT%H:%M:%S")}.123456Z"' in (
        row_preimage(row).decode()
    )


async def test_admin_tamper_route_changes_a_row() -> None:
    """POST /_emulator/tamper changes a stored row; verification then sees it."""
    emulator = Emulator(admin=True)
    cid = new_cid()
    ids = emulator.insert_events(plain_events(cid, 2))
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://ds") as http:
        changed = await http.post(
            "/_emulator/tamper", json={"event_id": ids[0], "changes": {"event_action": "x"}}
        )
        body = (await http.post(VERIFY, json={"correlation_id": cid})).json()
    emulator.close()
    assert changed.json() == {"event_id": ids[0], "changed": ["event_action"]}
    assert [e["event_id"] for e in body["tampered_events"]] == [ids[0]]


async def test_admin_tamper_refuses_unknown_rows_and_columns() -> None:
    """An unknown event is 404, a column that cannot be set is 400."""
    emulator = Emulator(admin=True)
    [event_id] = emulator.insert_events(plain_events(new_cid(), 1))
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://ds") as http:
        missing = await http.post("/_emulator/tamper", json={"event_id": "nope", "changes": {}})
        bad = await http.post(
            "/_emulator/tamper", json={"event_id": event_id, "changes": {"seq": 1}}
        )
    emulator.close()
    assert (missing.status_code, bad.status_code) == (404, 400)


def test_tamper_event_refuses_a_naive_timestamp(emulator: Emulator) -> None:
    """tamper_event wants an aware timestamp, as every instant the emulator stores."""
    [event_id] = emulator.insert_events(plain_events(new_cid(), 1))
    with pytest.raises(ValueError, match="event_timestamp"):
        emulator.tamper_event(event_id, event_timestamp=datetime(2026, 1, 1))
