"""Query parameters and their quirks, as the service reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from emulator_helpers import EVENTS, ago, event, new_cid, stamp

from kubernaut_audit.emulator import Emulator

pytestmark = pytest.mark.anyio
_PLUS_TWO = timezone(timedelta(hours=2))


async def _query(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(EVENTS, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _opaque_400(response: httpx.Response) -> bool:
    return response.status_code == 400 and response.json() == {
        "type": "https://kubernaut.ai/problems/validation-error",
        "title": "Validation Error",
        "status": 400,
        "detail": "The request did not pass OpenAPI schema validation",
    }


async def test_default_limit_is_50(emulator: Emulator, client: httpx.AsyncClient, cid: str) -> None:
    """Without limit, a page holds 50 events and says limit 50."""
    emulator.insert_events([event(cid) for _ in range(60)])
    body = await _query(client, correlation_id=cid)
    assert len(body["data"]) == 50
    assert body["pagination"] == {"limit": 50, "offset": 0, "total": 60, "has_more": True}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "abc"},
        {"limit": "2.5"},
        {"offset": "-1"},
        {"event_outcome": "partial"},
        {"detail_key": "a-b", "detail_value": "x"},
    ],
)
async def test_schema_violations_get_the_opaque_400(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """Out-of-range limit/offset, a bad outcome or detail_key get the middleware's opaque 400."""
    response = await client.get(EVENTS, params=params)
    assert _opaque_400(response)
    assert response.headers["content-type"] == "application/problem+json"


async def test_opaque_400_names_the_path_when_the_request_has_an_id(
    client: httpx.AsyncClient,
) -> None:
    """The middleware 400 carries instance (the path) when the request had an X-Request-ID."""
    response = await client.get(EVENTS, params={"limit": "0"}, headers={"X-Request-ID": "r-1"})
    assert response.json()["instance"] == EVENTS
    assert response.headers["x-request-id"] == "r-1"


@pytest.mark.parametrize("limit", ["1", "1000"])
async def test_limit_bounds_are_inclusive(client: httpx.AsyncClient, limit: str) -> None:
    """limit=1 and limit=1000 are accepted."""
    body = await _query(client, limit=limit)
    assert body["pagination"]["limit"] == int(limit)


@pytest.mark.parametrize(
    "params",
    [{"detail_key": "signal_name"}, {"detail_value": "x"}, {"since": "yesterday"}, {"until": "x"}],
)
async def test_handler_400_has_field_errors_and_resource(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """Unpaired detail_key/detail_value and bad since/until get the handler's query 400."""
    response = await client.get(EVENTS, params=params)
    assert response.status_code == 400
    problem = response.json()
    assert problem["field_errors"] == {"query": "invalid query parameters"}
    assert problem["resource"] == "query parameters"


@pytest.mark.parametrize(("limit", "size"), [("0100", 100), ("+7", 7), ("1_0", 1), ("0x1f", None)])
async def test_the_handler_reads_limit_again_as_a_decimal(
    emulator: Emulator, client: httpx.AsyncClient, cid: str, limit: str, size: int | None
) -> None:
    """The middleware parses limit with base prefixes; the handler then reads a decimal prefix."""
    emulator.insert_events([event(cid) for _ in range(3)])
    response = await client.get(EVENTS, params={"correlation_id": cid, "limit": limit})
    if size is None:
        assert response.json()["field_errors"] == {"pagination": "invalid pagination parameters"}
    else:
        assert response.json()["pagination"]["limit"] == size


async def test_empty_correlation_id_means_no_filter(
    emulator: Emulator, client: httpx.AsyncClient
) -> None:
    """correlation_id= returns the events of every correlation id."""
    emulator.insert_events([event(new_cid()), event(new_cid())])
    body = await _query(client, correlation_id="", limit=10)
    assert body["pagination"]["total"] == 2


async def test_empty_values_are_ignored_everywhere(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """Empty limit, offset, outcome, since and detail_key count as absent."""
    emulator.insert_events([event(cid)])
    params = {"limit": "", "offset": "", "event_outcome": "", "since": "", "detail_key": ""}
    body = await _query(client, correlation_id=cid, **params)
    assert body["pagination"]["total"] == 1
    assert body["pagination"]["limit"] == 50


async def test_repeated_parameter_uses_the_first(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """A repeated parameter is read as its first value, as Go's Query().Get does."""
    emulator.insert_events([event(cid)])
    response = await client.get(EVENTS, params=[("correlation_id", cid), ("correlation_id", "x")])
    assert response.json()["pagination"]["total"] == 1


@pytest.mark.parametrize(
    ("name", "value", "matching"),
    [
        ("event_type", "orchestrator.lifecycle.completed", 1),
        ("event_category", "orchestration", 1),
        ("event_outcome", "failure", 1),
        ("severity", "critical", 1),
    ],
)
async def test_filters(
    emulator: Emulator, client: httpx.AsyncClient, cid: str, name: str, value: str, matching: int
) -> None:
    """Each filter keeps only the matching events of the correlation id."""
    emulator.insert_events(
        [
            event(cid),
            event(cid, "orchestrator.lifecycle.completed", event_outcome="failure"),
            event(cid, severity="critical"),
        ]
    )
    body = await _query(client, correlation_id=cid, **{name: value})
    assert body["pagination"]["total"] == matching
    assert all(item[name] == value for item in body["data"])


@pytest.mark.parametrize(
    ("data_value", "query_value"),
    [("KubePodCrashLooping", "KubePodCrashLooping"), (3, "3"), (2.5, "2.5"), (True, "true")],
)
async def test_detail_filter_compares_text(
    emulator: Emulator, client: httpx.AsyncClient, cid: str, data_value: Any, query_value: str
) -> None:
    """detail_key/detail_value compare event_data->>key as text."""
    data = {"event_type": "gateway.signal.received", "probe": data_value}
    emulator.insert_events([event(cid, event_data=data), event(cid)])
    body = await _query(client, correlation_id=cid, detail_key="probe", detail_value=query_value)
    assert body["pagination"]["total"] == 1


@pytest.mark.parametrize("since", ["1h", "90m", "1h30m", "5400s", "0.5h", "1d"])
async def test_since_accepts_durations(
    emulator: Emulator, client: httpx.AsyncClient, cid: str, since: str
) -> None:
    """Go durations and Nd count back from now."""
    emulator.insert_events(
        [event(cid, event_timestamp=ago(minutes=5)), event(cid, event_timestamp=ago(days=2))]
    )
    body = await _query(client, correlation_id=cid, since=since)
    assert body["pagination"]["total"] == 1


async def test_since_7d(emulator: Emulator, client: httpx.AsyncClient, cid: str) -> None:
    """since=7d keeps events of the last week."""
    emulator.insert_events(
        [event(cid, event_timestamp=ago(days=6)), event(cid, event_timestamp=ago(days=8))]
    )
    body = await _query(client, correlation_id=cid, since="7d")
    assert body["pagination"]["total"] == 1


@pytest.mark.parametrize(
    "form",
    [
        stamp,
        lambda m: m.astimezone(_PLUS_TWO).isoformat(),
        lambda m: m.strftime("%Y-%m-%dT%H:%M:%S"),
    ],
    ids=["rfc3339-z", "rfc3339-offset", "naive-utc"],
)
async def test_absolute_bounds_are_inclusive(
    emulator: Emulator, client: httpx.AsyncClient, cid: str, form: Any
) -> None:
    """since and until accept RFC 3339 and naive UTC instants, and both bounds are inclusive."""
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    emulator.insert_events(
        [
            event(cid, event_timestamp=stamp(moment)),
            event(cid, event_timestamp=stamp(moment - timedelta(seconds=1))),
            event(cid, event_timestamp=stamp(moment + timedelta(seconds=1))),
        ]
    )
    body = await _query(client, correlation_id=cid, since=form(moment), until=form(moment))
    assert body["pagination"]["total"] == 1


async def test_date_form(emulator: Emulator, client: httpx.AsyncClient, cid: str) -> None:
    """since=YYYY-MM-DD means that day's midnight UTC."""
    today = datetime.now(UTC).date()
    emulator.insert_events(
        [
            event(cid, event_timestamp=f"{today.isoformat()}T00:00:00Z"),
            event(
                cid,
                event_timestamp=stamp(
                    datetime.combine(today, datetime.min.time(), UTC) - timedelta(seconds=1)
                ),
            ),
        ]
    )
    body = await _query(client, correlation_id=cid, since=today.isoformat())
    assert body["pagination"]["total"] == 1


async def test_bounds_filter_on_event_timestamp_not_storage_time(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """An event stored now but emitted two hours ago falls outside since=1h."""
    emulator.insert_events([event(cid, event_timestamp=ago(hours=2))])
    body = await _query(client, correlation_id=cid, since="1h")
    assert body["pagination"]["total"] == 0


async def test_order_is_timestamp_then_event_id_descending(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """Events come newest first, ties broken by event_id descending."""
    same = ago(minutes=1)
    emulator.insert_events(
        [event(cid, event_timestamp=same) for _ in range(5)]
        + [event(cid, event_timestamp=ago(minutes=2)), event(cid, event_timestamp=ago(seconds=1))]
    )
    data = (await _query(client, correlation_id=cid))["data"]
    keys = [(item["event_timestamp"], item["event_id"]) for item in data]
    stamps = [datetime.fromisoformat(ts) for ts, _ in keys]
    assert stamps == sorted(stamps, reverse=True)
    tied = [event_id for ts, event_id in keys if datetime.fromisoformat(ts) == stamps[1]]
    assert tied == sorted(tied, reverse=True)
    assert len(tied) == 5


async def test_offset_pages_through_the_order(
    emulator: Emulator, client: httpx.AsyncClient, cid: str
) -> None:
    """limit/offset pages concatenate to the full ordered list, has_more false on the last."""
    emulator.insert_events([event(cid, event_timestamp=ago(seconds=i)) for i in range(7)])
    full = (await _query(client, correlation_id=cid, limit=7))["data"]
    pages = [await _query(client, correlation_id=cid, limit=3, offset=o) for o in (0, 3, 6)]
    assert [e for page in pages for e in page["data"]] == full
    assert [page["pagination"]["has_more"] for page in pages] == [True, True, False]
