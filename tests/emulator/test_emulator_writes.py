"""Writes: validation, the timestamp window, caps, defaults, the dead-letter queue."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from emulator_helpers import BATCH, EVENTS, ago, event

from kubernaut_audit.emulator import Emulator, Faults

pytestmark = pytest.mark.anyio

OPAQUE = {
    "type": "https://kubernaut.ai/problems/validation-error",
    "title": "Validation Error",
    "status": 400,
    "detail": "The request did not pass OpenAPI schema validation",
}


async def _read_back(client: httpx.AsyncClient, cid: str) -> list[dict[str, Any]]:
    response = await client.get(EVENTS, params={"correlation_id": cid, "limit": 100})
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def test_single_write_returns_201_with_id(client: httpx.AsyncClient, cid: str) -> None:
    """POST /events stores the event and answers 201 with its id and timestamp."""
    response = await client.post(EVENTS, json=event(cid, event_timestamp=ago(seconds=1)))
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"event_id", "event_timestamp", "message"}
    [stored] = await _read_back(client, cid)
    assert stored["event_id"] == body["event_id"]
    assert stored["event_timestamp"].startswith(body["event_timestamp"][:-1])


async def test_batch_write_returns_ids_in_request_order(
    client: httpx.AsyncClient, cid: str
) -> None:
    """POST /events/batch answers 201 with event_ids in request order."""
    batch = [event(cid, event_type=f"gateway.signal.t{i}") for i in range(3)]
    response = await client.post(BATCH, json=batch)
    assert response.status_code == 201
    ids = response.json()["event_ids"]
    by_id = {item["event_id"]: item["event_type"] for item in await _read_back(client, cid)}
    assert [by_id[event_id] for event_id in ids] == [f"gateway.signal.t{i}" for i in range(3)]


@pytest.mark.parametrize(
    "change",
    [
        {"version": None},
        {"event_category": "not-a-category"},
        {"event_outcome": "partial"},
        {"correlation_id": ""},
        {"correlation_id": "x" * 256},
        {"event_action": "a" * 51},
        {"event_timestamp": "2026-01-02T03:04:05"},
        {"duration_ms": "12"},
        {"event_data": {"no": "event_type"}},
        {"event_data": "text"},
    ],
    ids=lambda change: next(iter(change)),
)
async def test_schema_violations_get_the_opaque_400(
    client: httpx.AsyncClient, cid: str, change: dict[str, Any]
) -> None:
    """An event that fails the request schema gets the middleware's opaque 400."""
    body = {key: value for key, value in {**event(cid), **change}.items() if value is not None}
    response = await client.post(EVENTS, json=body)
    assert response.status_code == 400
    assert response.json() == OPAQUE
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'"text"'])
async def test_non_object_single_write_is_opaque_400(
    client: httpx.AsyncClient, body: bytes
) -> None:
    """A body that is not one JSON object gets the opaque 400."""
    response = await client.post(EVENTS, content=body)
    assert response.json() == OPAQUE


async def test_non_array_batch_is_opaque_400(client: httpx.AsyncClient, cid: str) -> None:
    """A batch body that is not a JSON array gets the opaque 400."""
    response = await client.post(BATCH, json=event(cid))
    assert response.json() == OPAQUE


async def test_unknown_top_level_fields_are_ignored(client: httpx.AsyncClient, cid: str) -> None:
    """Members the schema does not declare are ignored, not refused."""
    response = await client.post(EVENTS, json={**event(cid), "brand_new_field": 1})
    assert response.status_code == 201
    [stored] = await _read_back(client, cid)
    assert "brand_new_field" not in stored


@pytest.mark.parametrize(("when", "status"), [({"days": 6, "hours": 23}, 201), ({"days": 8}, 400)])
async def test_timestamp_window_in_the_past(
    client: httpx.AsyncClient, cid: str, when: dict[str, float], status: int
) -> None:
    """Timestamps older than 7 days are refused with a handler 400 naming event_timestamp."""
    response = await client.post(EVENTS, json=event(cid, event_timestamp=ago(**when)))
    assert response.status_code == status
    if status == 400:
        assert response.json()["detail"] == "audit event request failed validation"


@pytest.mark.parametrize(("minutes", "status"), [(59, 201), (61, 400)])
async def test_timestamp_window_in_the_future(
    client: httpx.AsyncClient, cid: str, minutes: int, status: int
) -> None:
    """Timestamps more than 60 minutes ahead are refused."""
    response = await client.post(EVENTS, json=event(cid, event_timestamp=ago(minutes=-minutes)))
    assert response.status_code == status


async def test_batch_is_capped_at_500(client: httpx.AsyncClient, cid: str) -> None:
    """501 events in one batch are refused as batch-size-exceeded; 500 are stored."""
    one = event(cid)
    refused = await client.post(BATCH, json=[one] * 501)
    assert refused.status_code == 400
    assert refused.json()["type"] == "https://kubernaut.ai/problems/batch-size-exceeded"
    assert (await client.post(BATCH, json=[one] * 500)).status_code == 201


async def test_invalid_event_in_batch_names_its_index(client: httpx.AsyncClient, cid: str) -> None:
    """A batch event outside the time window is reported by index; nothing is stored."""
    batch = [event(cid), event(cid, event_timestamp=ago(days=9))]
    response = await client.post(BATCH, json=batch)
    assert response.status_code == 400
    assert response.json()["detail"] == "event at index 1 failed validation"
    assert await _read_back(client, cid) == []


async def test_a_batch_event_gets_its_stored_parents_date(
    client: httpx.AsyncClient, cid: str
) -> None:
    """A batch event naming a stored parent is written with the parent's date."""
    written = ago(days=2)
    first = await client.post(EVENTS, json=event(cid, event_timestamp=written))
    parent = first.json()["event_id"]
    response = await client.post(BATCH, json=[event(cid, parent_event_id=parent)])
    assert response.status_code == 201
    child = next(item for item in await _read_back(client, cid) if item["parent_event_id"])
    assert child["parent_event_date"] == written[:10] + "T00:00:00Z"


async def test_body_over_5_mib_is_413(client: httpx.AsyncClient, cid: str) -> None:
    """A request body over 5 MiB gets 413 as a problem."""
    body = json.dumps([event(cid)] * 2).encode() + b" " * (5 * 1024 * 1024)
    response = await client.post(BATCH, content=body)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 413


async def test_event_data_over_256_kib_is_refused(client: httpx.AsyncClient, cid: str) -> None:
    """event_data over 256 KiB gets a handler 400 naming event_data."""
    data = {"event_type": "gateway.signal.received", "blob": "x" * (256 * 1024)}
    response = await client.post(EVENTS, json=event(cid, event_data=data))
    assert response.status_code == 400
    assert response.json()["detail"] == "event_data exceeds size or nesting depth limits"


async def test_event_data_nesting_over_10_is_refused(client: httpx.AsyncClient, cid: str) -> None:
    """event_data nested deeper than 10 levels gets a handler 400; 10 levels pass."""

    def nested(depth: int) -> dict[str, Any]:
        data: dict[str, Any] = {"event_type": "gateway.signal.received"}
        inner = data
        for _ in range(depth - 1):
            inner["n"] = {}
            inner = inner["n"]
        return data

    assert (await client.post(EVENTS, json=event(cid, event_data=nested(10)))).status_code == 201
    response = await client.post(EVENTS, json=event(cid, event_data=nested(11)))
    assert response.status_code == 400


async def test_actor_defaults_to_the_category_service(client: httpx.AsyncClient, cid: str) -> None:
    """Without actor fields, the actor is "<category>-service" of type service."""
    await client.post(EVENTS, json=event(cid, "notification.message.sent"))
    [stored] = await _read_back(client, cid)
    assert (stored["actor_type"], stored["actor_id"]) == ("service", "notification-service")


async def test_actor_defaults_to_the_calling_person(client: httpx.AsyncClient, cid: str) -> None:
    """X-Auth-Request-User naming a person makes the default actor that user."""
    await client.post(EVENTS, json=event(cid), headers={"X-Auth-Request-User": "alice@example"})
    [stored] = await _read_back(client, cid)
    assert (stored["actor_type"], stored["actor_id"]) == ("user", "alice@example")


async def test_service_account_caller_keeps_service_actor(
    client: httpx.AsyncClient, cid: str
) -> None:
    """X-Auth-Request-User naming a ServiceAccount keeps the service default."""
    user = "system:serviceaccount:kubernaut:gateway"
    await client.post(EVENTS, json=event(cid), headers={"X-Auth-Request-User": user})
    [stored] = await _read_back(client, cid)
    assert (stored["actor_type"], stored["actor_id"]) == ("service", "gateway-service")


async def test_explicit_actor_is_kept(client: httpx.AsyncClient, cid: str) -> None:
    """An actor the writer sets is stored as sent, whatever the header says."""
    body = event(cid, actor_type="controller", actor_id="rr-controller")
    await client.post(EVENTS, json=body, headers={"X-Auth-Request-User": "alice"})
    [stored] = await _read_back(client, cid)
    assert (stored["actor_type"], stored["actor_id"]) == ("controller", "rr-controller")


async def test_resource_defaults(client: httpx.AsyncClient, cid: str) -> None:
    """resource_type defaults to the category and resource_id to the correlation id."""
    await client.post(EVENTS, json=event(cid, "workflowexecution.workflow.started"))
    [stored] = await _read_back(client, cid)
    assert (stored["resource_type"], stored["resource_id"]) == ("workflowexecution", cid)


@pytest.mark.parametrize(("written", "read"), [(None, 2555), (0, 2555), (-5, 2555), (30, 30)])
async def test_retention_days_default(
    client: httpx.AsyncClient, cid: str, written: int | None, read: int
) -> None:
    """retention_days is 2555 when omitted or <= 0, else as written."""
    body = event(cid) if written is None else event(cid, retention_days=written)
    await client.post(EVENTS, json=body)
    [stored] = await _read_back(client, cid)
    assert stored["retention_days"] == read


async def test_database_down_parks_single_writes_in_the_dlq(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """With the database down a single write gets 202 and is not queryable until replayed."""
    emulator.faults = Faults(database_down=True, routes=())
    response = await client.post(EVENTS, json=event(cid))
    assert response.status_code == 202
    assert response.json()["status"] == "accepted"
    assert emulator.replay_dead_letters() == 0
    emulator.faults = Faults()
    assert await _read_back(client, cid) == []
    assert emulator.replay_dead_letters() == 1
    assert len(await _read_back(client, cid)) == 1


async def test_dlq_replays_on_its_interval(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """Parked events reappear once dlq_replay_interval has passed."""
    emulator.faults = Faults(dlq_rate=1.0, dlq_replay_interval=0.0)
    assert (await client.post(EVENTS, json=event(cid))).status_code == 202
    assert emulator.stats.dead_letter_queue == 1
    assert len(await _read_back(client, cid)) == 1


async def test_database_down_parks_batches_in_the_dlq(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """With the database down a batch gets 202 and every event waits in the dead-letter queue."""
    emulator.faults.database_down = True
    response = await client.post(BATCH, json=[event(cid), event(cid)])
    assert response.status_code == 202
    assert response.json()["count"] == 2
    emulator.faults = Faults()
    assert emulator.replay_dead_letters() == 2


async def test_database_down_fails_queries_with_database_error(
    emulator: Emulator, client: httpx.AsyncClient
) -> None:
    """With the database down a query gets a 500 database-error problem."""
    emulator.faults.database_down = True
    response = await client.get(EVENTS, params={"limit": 1})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Database Error"


def test_insert_events_refuses_invalid_events(emulator: Emulator) -> None:
    """insert_events raises ValueError naming what fails the schema."""
    with pytest.raises(ValueError, match="version is required"):
        emulator.insert_events([{"event_type": "x"}])
