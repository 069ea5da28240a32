"""Fault injection, the admin routes and request counts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import anyio
import httpx
import pytest
from emulator_helpers import BATCH, EVENTS, ago, event

from kubernaut_audit.emulator import Emulator, Faults

pytestmark = pytest.mark.anyio
trio_only = pytest.mark.parametrize("anyio_backend", ["trio"], indirect=True)


async def _page(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(EVENTS, params={"limit": 10, **params})
    body: dict[str, Any] = response.json()
    return body


@trio_only
async def test_latency_delays_the_answer(emulator: Emulator, client: httpx.AsyncClient) -> None:
    """latency adds that many seconds before the answer."""
    emulator.faults = Faults(latency=3.0)
    start = anyio.current_time()
    await client.get(EVENTS)
    assert anyio.current_time() - start == pytest.approx(3.0)


@trio_only
async def test_latency_jitter_stays_within_bounds(
    emulator: Emulator, client: httpx.AsyncClient
) -> None:
    """latency_jitter moves each delay by at most its value, and does move it."""
    emulator.faults = Faults(latency=1.0, latency_jitter=0.5, seed=1)
    delays = []
    for _ in range(10):
        start = anyio.current_time()
        await client.get(EVENTS)
        delays.append(anyio.current_time() - start)
    assert all(0.5 <= delay <= 1.5 for delay in delays)
    assert len(set(delays)) > 1


@pytest.mark.parametrize(
    ("faults", "status", "kind"),
    [
        (Faults(error_500_rate=1.0), 500, "internal-error"),
        (Faults(error_503_rate=1.0), 503, "service-unavailable"),
        (Faults(rate_429=1.0), 429, "rate-limit-exceeded"),
    ],
)
async def test_error_rates_answer_problems(
    emulator: Emulator, client: httpx.AsyncClient, faults: Faults, status: int, kind: str
) -> None:
    """Error faults answer the status as an RFC 7807 problem."""
    emulator.faults = faults
    response = await client.get(EVENTS)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"https://kubernaut.ai/problems/{kind}"


async def test_503_carries_retry_after_only_when_set(
    emulator: Emulator, client: httpx.AsyncClient
) -> None:
    """503 sends Retry-After only when retry_after is set."""
    emulator.faults = Faults(error_503_rate=1.0)
    assert "retry-after" not in (await client.get(EVENTS)).headers
    emulator.faults = Faults(error_503_rate=1.0, retry_after="7")
    assert (await client.get(EVENTS)).headers["retry-after"] == "7"


async def test_429_always_carries_retry_after(
    emulator: Emulator, client: httpx.AsyncClient
) -> None:
    """429 sends Retry-After: retry_after, or 1 by default."""
    emulator.faults = Faults(rate_429=1.0)
    assert (await client.get(EVENTS)).headers["retry-after"] == "1"
    emulator.faults = Faults(rate_429=1.0, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    assert (await client.get(EVENTS)).headers["retry-after"].startswith("Wed")


async def test_proxy_502_is_not_json(emulator: Emulator, client: httpx.AsyncClient) -> None:
    """proxy_502_rate answers 502 with an HTML body."""
    emulator.faults = Faults(proxy_502_rate=1.0)
    response = await client.get(EVENTS)
    assert response.status_code == 502
    assert response.headers["content-type"] == "text/html"


@pytest.mark.parametrize(
    "faults",
    [Faults(drop_connection_rate=1.0), Faults(truncated_body_rate=1.0)],
    ids=["drop", "truncate"],
)
async def test_broken_bodies_raise_remote_protocol_error_in_process(
    emulator: Emulator, client: httpx.AsyncClient, faults: Faults
) -> None:
    """In-process, a dropped or truncated body raises httpx.RemoteProtocolError."""
    emulator.faults = faults
    with pytest.raises(httpx.RemoteProtocolError):
        await client.get(EVENTS)


async def test_malformed_json_is_well_framed(emulator: Emulator, client: httpx.AsyncClient) -> None:
    """malformed_json_rate sends a 200 whose JSON stops halfway."""
    emulator.faults = Faults(malformed_json_rate=1.0)
    response = await client.get(EVENTS)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(response.content))
    with pytest.raises(json.JSONDecodeError):
        response.json()


@trio_only
async def test_slow_body_trickles(emulator: Emulator, client: httpx.AsyncClient, cid: str) -> None:
    """slow_body waits that long before each 512-byte chunk."""
    emulator.insert_events([event(cid) for _ in range(3)])
    emulator.faults = Faults(slow_body=0.5)
    start = anyio.current_time()
    response = await client.get(EVENTS, params={"correlation_id": cid})
    chunks = -(-len(response.content) // 512)
    assert anyio.current_time() - start == pytest.approx(0.5 * chunks)
    assert len(response.json()["data"]) == 3


async def test_extra_fields_everywhere(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """extra_fields adds an unknown member to the envelope, the pagination and each event."""
    emulator.insert_events([event(cid)])
    emulator.faults = Faults(extra_fields=True)
    body = await _page(client, correlation_id=cid)
    assert "x_emulator_extra" in body
    assert "x_emulator_extra" in body["pagination"]
    assert "x_emulator_extra" in body["data"][0]


async def test_unknown_enums_in_responses(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """unknown_enums returns category, outcome and type values no spec lists."""
    emulator.insert_events([event(cid)])
    emulator.faults = Faults(unknown_enums=True)
    [item] = (await _page(client, correlation_id=cid))["data"]
    assert item["event_category"] == "quantumcomputing"
    assert item["event_outcome"] == "partially_succeeded"
    assert item["event_type"] == "future.service.event_happened"


async def test_insert_between_pages_shifts_the_next_page(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """A newer row inserted after a page makes the next page repeat an item."""
    emulator.insert_events([event(cid, event_timestamp=ago(minutes=i + 1)) for i in range(4)])
    emulator.faults = Faults(insert_between_pages=1)
    first = await _page(client, correlation_id=cid, limit=2)
    second = await _page(client, correlation_id=cid, limit=2, offset=2)
    assert first["data"][-1]["event_id"] == second["data"][0]["event_id"]
    assert second["pagination"]["total"] == 5


async def test_insert_between_pages_hook(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """A hook decides what lands between pages, here a late row with an old timestamp."""
    seen: list[Mapping[str, str]] = []

    def late(params: Mapping[str, str]) -> list[dict[str, Any]]:
        seen.append(params)
        return [event(cid, event_timestamp=ago(days=1))] if len(seen) == 1 else []

    emulator.insert_events([event(cid, event_timestamp=ago(minutes=i + 1)) for i in range(2)])
    emulator.faults = Faults(insert_between_pages=late)
    await _page(client, correlation_id=cid, limit=2)
    assert seen[0]["correlation_id"] == cid
    assert (await _page(client, correlation_id=cid))["pagination"]["total"] == 3


async def test_insert_between_count_and_data(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """Rows inserted between the count and the data make len(data) exceed total."""
    emulator.insert_events([event(cid)])
    emulator.faults = Faults(insert_between_count_and_data=2)
    body = await _page(client, correlation_id=cid)
    assert body["pagination"]["total"] == 1
    assert len(body["data"]) == 3
    assert body["pagination"]["has_more"] is False


async def test_routes_select_where_faults_apply(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """Faults apply only to the routes named in routes."""
    emulator.faults = Faults(error_500_rate=1.0, routes=("batch",))
    assert (await client.get(EVENTS)).status_code == 200
    assert (await client.post(BATCH, json=[event(cid)])).status_code == 500


async def test_seed_makes_draws_reproducible(emulator: Emulator, client: httpx.AsyncClient) -> None:
    """The same seed gives the same sequence of injected errors."""
    runs = []
    for _ in range(2):
        emulator.faults = Faults(error_500_rate=0.5, seed=42)
        runs.append([(await client.get(EVENTS)).status_code for _ in range(20)])
    assert runs[0] == runs[1]
    assert set(runs[0]) == {200, 500}


async def test_mutating_faults_takes_effect_on_next_request(
    emulator: Emulator, client: httpx.AsyncClient
) -> None:
    """Changing a field of emulator.faults applies to the next request."""
    emulator.faults.error_500_rate = 1.0
    assert (await client.get(EVENTS)).status_code == 500
    emulator.faults.error_500_rate = 0.0
    assert (await client.get(EVENTS)).status_code == 200


async def test_stats_count_routes_correlations_and_statuses(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """stats counts requests per route, per correlation id and per status."""
    await client.post(BATCH, json=[event(cid), event(cid)])
    await client.get(EVENTS, params={"correlation_id": cid})
    await client.get(EVENTS, params={"correlation_id": cid})
    await client.get("/readyz")
    stats = emulator.stats
    assert stats.requests == 4
    assert stats.by_route == {"batch": 1, "query": 2, "readyz": 1}
    assert stats.by_correlation_id == {cid: 3}
    assert stats.by_status == {201: 1, 200: 3}
    emulator.reset_stats()
    assert emulator.stats.requests == 0


@pytest.fixture
async def admin_client() -> Any:
    emu = Emulator(admin=True)
    async with httpx.AsyncClient(transport=emu.transport(), base_url="http://ds") as http:
        yield http
    emu.close()


async def test_admin_faults_round_trip(admin_client: httpx.AsyncClient) -> None:
    """PUT /_emulator/faults merges JSON settings; GET shows them; they take effect."""
    response = await admin_client.put(
        "/_emulator/faults", json={"error_503_rate": 1, "retry_after": "2", "routes": ["query"]}
    )
    assert response.status_code == 200
    shown = (await admin_client.get("/_emulator/faults")).json()
    assert (shown["error_503_rate"], shown["retry_after"], shown["routes"]) == (1.0, "2", ["query"])
    assert (await admin_client.get(EVENTS)).status_code == 503


@pytest.mark.parametrize(
    "body", [{"no_such_fault": 1}, {"latency": "slow"}, {"routes": ["nowhere"]}, [1]]
)
async def test_admin_refuses_bad_settings(admin_client: httpx.AsyncClient, body: Any) -> None:
    """Unknown names and wrong types get a 400 problem and change nothing."""
    response = await admin_client.put("/_emulator/faults", json=body)
    assert response.status_code == 400
    assert (await admin_client.get("/_emulator/faults")).json()["latency"] == 0.0


async def test_admin_stats_and_reset(admin_client: httpx.AsyncClient) -> None:
    """GET /_emulator/stats reports counts; POST /_emulator/reset clears faults and counts."""
    await admin_client.put("/_emulator/faults", json={"not_ready": True})
    await admin_client.get("/readyz")
    stats = (await admin_client.get("/_emulator/stats")).json()
    assert stats["by_route"] == {"readyz": 1}
    assert stats["by_status"] == {"503": 1}
    await admin_client.post("/_emulator/reset")
    assert (await admin_client.get("/_emulator/stats")).json()["requests"] == 0
    assert (await admin_client.get("/readyz")).status_code == 200


async def test_admin_replay(admin_client: httpx.AsyncClient, cid: str) -> None:
    """POST /_emulator/replay stores what the dead-letter queue holds."""
    await admin_client.put("/_emulator/faults", json={"dlq_rate": 1.0})
    assert (await admin_client.post(EVENTS, json=event(cid))).status_code == 202
    assert (await admin_client.post("/_emulator/replay")).json() == {"replayed": 1}
    assert (await _page(admin_client, correlation_id=cid))["pagination"]["total"] == 1


async def test_admin_wrong_method_is_405(admin_client: httpx.AsyncClient) -> None:
    """The admin routes answer 405 for methods they do not take."""
    response = await admin_client.delete("/_emulator/faults")
    assert response.status_code == 405
    assert response.headers.get_list("allow") == ["GET", "PUT"]
