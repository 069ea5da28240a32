"""Differential test: raw requests against the bodies of data-storage-behaviour.md.

Every test sends exact bytes with httpx (never the SDK) to one emulator through both of its
transports, in-process (``emulator.transport()``) and served on a loopback socket
(``serve_in_thread``, one server for the module), and asserts the status, the headers that
matter and the body: byte for byte where the document gives bytes, event ids and hashes masked.

Tests follow the document (``../shared/reference/data-storage-behaviour.md``) section by
section; each docstring is the statement it checks. The emulator holds writes to a payload spec
of our own (``emulator_helpers.PAYLOAD_SPEC``), as the service holds them to its own. Auth mode
has its own module, ``test_emulator_differential_auth.py``.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from emulator_helpers import BATCH, EVENTS, PAYLOAD_SPEC, new_cid

from kubernaut_audit.emulator import Emulator, Faults

pytestmark = pytest.mark.anyio

_ID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_HASH = re.compile(rb'"[0-9a-f]{64}"')
JSON_TYPE = {"Content-Type": "application/json"}
VALIDATION_400 = (
    b'{"detail":"The request did not pass OpenAPI schema validation","status":400,'
    b'"title":"Validation Error","type":"https://kubernaut.ai/problems/validation-error"}\n'
)
PROBLEM = "application/problem+json"
_PLUS_TWO = timezone(timedelta(hours=2))


def plain_400(
    detail: str, kind: str = "validation-error", title: str = "Validation Error"
) -> bytes:
    """A handler problem in the plain form: four keys, sorted, no instance."""
    return (
        f'{{"detail":"{detail}","status":400,"title":"{title}",'
        f'"type":"https://kubernaut.ai/problems/{kind}"}}\n'
    ).encode()


def query_400(field: str) -> bytes:
    """The query handler's 400 with field_errors, instance and resource."""
    return (
        f'{{"detail":"Validation failed for query parameters: {field} - invalid {field} '
        f'parameters","field_errors":{{"{field}":"invalid {field} parameters"}},'
        '"instance":"/audit/query parameters","resource":"query parameters","status":400,'
        '"title":"Validation Error","type":"https://kubernaut.ai/problems/validation-error"}\n'
    ).encode()


def masked(body: bytes) -> bytes:
    """The body with event ids and hashes replaced by <id> and <hash>."""
    return _HASH.sub(b'"<hash>"', _ID.sub(b"<id>", body))


def moment(**ago: float) -> datetime:
    """A moment that long ago, at microsecond .123456 so that fractions show."""
    return (datetime.now(UTC) - timedelta(**ago)).replace(microsecond=123456)


def rfc3339(at: datetime) -> str:
    text = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return text + "Z"


def signal(cid: str, at: datetime | None = None, **overrides: Any) -> dict[str, Any]:
    """A minimal valid gateway event as a writer sends it."""
    event: dict[str, Any] = {
        "version": "1.0",
        "event_type": "gateway.signal.received",
        "event_timestamp": rfc3339(at or moment(minutes=1)),
        "event_category": "gateway",
        "event_action": "received",
        "event_outcome": "success",
        "correlation_id": cid,
        "event_data": {
            "event_type": "gateway.signal.received",
            "signal_name": "KubePodCrashLooping",
        },
    }
    event.update(overrides)
    return event


async def post(
    http: httpx.AsyncClient, path: str, body: Any, headers: dict[str, str] | None = None
) -> httpx.Response:
    """POST ``body`` as JSON bytes with Content-Type: application/json."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await http.post(path, content=content, headers={**JSON_TYPE, **(headers or {})})


async def stored(http: httpx.AsyncClient, cid: str, limit: int = 100) -> list[dict[str, Any]]:
    response = await http.get(EVENTS, params={"correlation_id": cid, "limit": limit})
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


@pytest.fixture
def anyio_backend() -> str:
    """Raw HTTP does not depend on the event loop: asyncio only."""
    return "asyncio"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    emulator = Emulator(spec=PAYLOAD_SPEC)
    yield emulator
    emulator.close()


@pytest.fixture(scope="module")
def served_url(emu: Emulator) -> Iterator[str]:
    with emu.serve_in_thread() as url:
        yield url


@pytest.fixture(params=["in-process", "socket"])
async def http(request: pytest.FixtureRequest, emu: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    """A raw client on the emulator, in-process or over the loopback socket."""
    if request.param == "socket":
        # Plain HTTP on loopback: no TLS context to build, no proxy to look up.
        url = request.getfixturevalue("served_url")
        client = httpx.AsyncClient(base_url=url, verify=False, trust_env=False)
    else:
        client = httpx.AsyncClient(transport=emu.transport(), base_url="http://data-storage")
    async with client:
        yield client
    emu.faults = Faults()


@pytest.fixture
def cid() -> str:
    return new_cid()


# == Routes =====================================================================================


async def test_readyz_answers_ready_as_sniffed_text(http: httpx.AsyncClient) -> None:
    """GET /readyz: {"status":"ready"}, no Content-Type written, so text/plain; charset=utf-8."""
    response = await http.get("/readyz")
    assert response.status_code == 200
    assert response.content == b'{"status":"ready"}'
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


async def test_readyz_answers_503_not_ready(http: httpx.AsyncClient, emu: Emulator) -> None:
    """GET /readyz when not ready: 503 {"status":"not_ready",...}."""
    emu.faults = Faults(not_ready=True)
    response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "not_ready"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("path", ["/healthz", "/health"])
async def test_no_health_route_on_the_main_port(http: httpx.AsyncClient, path: str) -> None:
    """/healthz lives on a separate port and /health does not exist: 404 here."""
    assert (await http.get(path)).status_code == 404


@pytest.mark.parametrize("path", ["/nope", "/api/v1/audit", f"{EVENTS}/"])
async def test_unknown_path_is_a_text_404(http: httpx.AsyncClient, path: str) -> None:
    """Unknown path: 404 text/plain "404 page not found"."""
    response = await http.get(path)
    assert response.status_code == 404
    assert response.content == b"404 page not found\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [("PUT", EVENTS, ["GET", "POST"]), ("GET", BATCH, ["POST"]), ("POST", "/readyz", ["GET"])],
)
async def test_wrong_method_is_405_with_allow_and_an_untyped_empty_body(
    http: httpx.AsyncClient, method: str, path: str, allowed: list[str]
) -> None:
    """Wrong method: 405 with an Allow header and an empty body without a content type."""
    response = await http.request(method, path)
    assert response.status_code == 405
    assert response.headers.get_list("allow") == allowed
    assert response.content == b""
    assert "content-type" not in response.headers


# == Query parameters and their quirks ===========================================================


async def _three_kinds(http: httpx.AsyncClient, cid: str) -> None:
    batch = [
        signal(cid),
        signal(
            cid,
            event_type="gateway.crd.created",
            event_outcome="failure",
            severity="critical",
            event_data={"event_type": "gateway.crd.created", "signal_name": "X"},
        ),
        signal(
            cid,
            event_type="aianalysis.phase.transition",
            event_category="analysis",
            event_data={
                "event_type": "aianalysis.phase.transition",
                "old_phase": "Investigating",
                "new_phase": "Analyzing",
            },
        ),
    ]
    assert (await post(http, BATCH, batch)).status_code == 201


@pytest.mark.parametrize(
    ("name", "value", "event_type"),
    [
        ("event_type", "gateway.crd.created", "gateway.crd.created"),
        ("event_category", "analysis", "aianalysis.phase.transition"),
        ("event_outcome", "failure", "gateway.crd.created"),
        ("severity", "critical", "gateway.crd.created"),
    ],
)
async def test_filters_keep_matching_events(
    http: httpx.AsyncClient, cid: str, name: str, value: str, event_type: str
) -> None:
    """Filters: correlation_id, event_type, event_category, event_outcome, severity."""
    await _three_kinds(http, cid)
    response = await http.get(EVENTS, params={"correlation_id": cid, name: value, "limit": 10})
    assert [item["event_type"] for item in response.json()["data"]] == [event_type]


@pytest.mark.parametrize(
    ("key", "stored_value", "query_value"),
    [
        ("signal_name", "KubeNodeNotReady", "KubeNodeNotReady"),
        ("occurrence_count", 3, "3"),
        ("ratio", 2.5, "2.5"),
        ("deduplicated", True, "true"),
    ],
)
async def test_detail_filter_compares_event_data_as_text(
    http: httpx.AsyncClient, cid: str, key: str, stored_value: Any, query_value: str
) -> None:
    """detail_key + detail_value compare event_data->>key as text."""
    data = {"event_type": "gateway.signal.received", "signal_name": "other", key: stored_value}
    assert (await post(http, BATCH, [signal(cid, event_data=data), signal(cid)])).status_code == 201
    params: dict[str, str | int] = {
        "correlation_id": cid,
        "detail_key": key,
        "detail_value": query_value,
        "limit": 10,
    }
    response = await http.get(EVENTS, params=params)
    assert response.json()["pagination"]["total"] == 1


async def test_detail_key_outside_its_pattern_is_refused(http: httpx.AsyncClient) -> None:
    """detail_key matches ^[a-zA-Z0-9_]+$ (else the middleware's 400)."""
    response = await http.get(EVENTS, params={"detail_key": "a-b", "detail_value": "x"})
    assert (response.status_code, response.content) == (400, VALIDATION_400)


async def test_an_empty_value_means_no_filter(http: httpx.AsyncClient) -> None:
    """An empty value means no filter: correlation_id= returns every event of every test."""
    mine = [new_cid(), new_cid()]
    assert (await post(http, BATCH, [signal(mine[0]), signal(mine[1])])).status_code == 201
    response = await http.get(EVENTS, params={"correlation_id": "", "limit": 1000})
    seen = {item["correlation_id"] for item in response.json()["data"]}
    assert set(mine) <= seen


async def test_default_limit_is_50(http: httpx.AsyncClient, cid: str) -> None:
    """Default limit is 50 when limit is absent."""
    assert (await post(http, BATCH, [signal(cid) for _ in range(51)])).status_code == 201
    body = (await http.get(EVENTS, params={"correlation_id": cid})).json()
    assert len(body["data"]) == 50
    assert body["pagination"] == {"limit": 50, "offset": 0, "total": 51, "has_more": True}


@pytest.mark.parametrize(
    "params", [{"limit": "0"}, {"limit": "1001"}, {"limit": "abc"}, {"offset": "-1"}]
)
async def test_limit_and_offset_bounds_are_the_middlewares(
    http: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """Limit must be 1-1000, offset >= 0."""
    response = await http.get(EVENTS, params=params)
    assert (response.status_code, response.content) == (400, VALIDATION_400)


@pytest.mark.parametrize("limit", ["1", "1000"])
async def test_limit_bounds_are_inclusive(http: httpx.AsyncClient, limit: str) -> None:
    """Limit 1 and 1000 are accepted."""
    response = await http.get(EVENTS, params={"correlation_id": new_cid(), "limit": limit})
    assert response.json()["pagination"]["limit"] == int(limit)


@pytest.mark.parametrize(
    "form",
    [
        lambda at: at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        lambda at: at.astimezone(_PLUS_TWO).strftime("%Y-%m-%dT%H:%M:%S+02:00"),
        lambda at: at.strftime("%Y-%m-%dT%H:%M:%S"),
    ],
    ids=["rfc3339-z", "rfc3339-offset", "naive-utc"],
)
async def test_absolute_bounds_are_inclusive(http: httpx.AsyncClient, cid: str, form: Any) -> None:
    """since/until: RFC 3339 or YYYY-MM-DDTHH:MM:SS (UTC); bounds are inclusive."""
    at = moment(hours=2).replace(microsecond=0)
    events = [signal(cid, at + timedelta(seconds=delta)) for delta in (-1, 0, 1)]
    assert (await post(http, BATCH, events)).status_code == 201
    params: dict[str, str | int] = {
        "correlation_id": cid,
        "since": form(at),
        "until": form(at),
        "limit": 10,
    }
    data = (await http.get(EVENTS, params=params)).json()["data"]
    assert [item["event_timestamp"] for item in data] == [at.strftime("%Y-%m-%dT%H:%M:%SZ")]


@pytest.mark.parametrize("since", ["1h", "90m", "1h30m", "0.5h", "5400s"])
async def test_since_takes_go_durations(http: httpx.AsyncClient, cid: str, since: str) -> None:
    """since/until: 24h-style Go durations, counted back from now."""
    events = [signal(cid, moment(minutes=20)), signal(cid, moment(hours=3))]
    assert (await post(http, BATCH, events)).status_code == 201
    params: dict[str, str | int] = {"correlation_id": cid, "since": since, "limit": 10}
    assert (await http.get(EVENTS, params=params)).json()["pagination"]["total"] == 1


async def test_since_takes_days(http: httpx.AsyncClient, emu: Emulator, cid: str) -> None:
    """since/until: 7d."""
    emu.insert_events([signal(cid, moment(days=6)), signal(cid, moment(days=8))])
    params: dict[str, str | int] = {"correlation_id": cid, "since": "7d", "limit": 10}
    assert (await http.get(EVENTS, params=params)).json()["pagination"]["total"] == 1


async def test_since_takes_a_date(http: httpx.AsyncClient, emu: Emulator, cid: str) -> None:
    """since/until: YYYY-MM-DD, midnight UTC, inclusive."""
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    emu.insert_events([signal(cid, midnight), signal(cid, midnight - timedelta(seconds=1))])
    params: dict[str, str | int] = {
        "correlation_id": cid,
        "since": midnight.date().isoformat(),
        "limit": 10,
    }
    assert (await http.get(EVENTS, params=params)).json()["pagination"]["total"] == 1


async def test_bounds_filter_on_emission_time(http: httpx.AsyncClient, cid: str) -> None:
    """since/until filter on event_timestamp (emission time), not on the time the row was stored."""
    assert (await post(http, EVENTS, signal(cid, moment(hours=2)))).status_code == 201
    params: dict[str, str | int] = {"correlation_id": cid, "since": "1h", "limit": 10}
    assert (await http.get(EVENTS, params=params)).json()["pagination"]["total"] == 0


async def test_order_is_timestamp_then_event_id_descending(
    http: httpx.AsyncClient, cid: str
) -> None:
    """Ordering: event_timestamp DESC, event_id DESC."""
    tied = moment(minutes=5)
    events = [signal(cid, tied) for _ in range(4)] + [
        signal(cid, moment(minutes=9)),
        signal(cid, moment(minutes=1)),
    ]
    assert (await post(http, BATCH, events)).status_code == 201
    data = await stored(http, cid)
    keys = [(item["event_timestamp"], item["event_id"]) for item in data]
    assert keys == sorted(keys, key=lambda k: (datetime.fromisoformat(k[0]), k[1]), reverse=True)


async def test_pages_by_limit_and_offset(http: httpx.AsyncClient, cid: str) -> None:
    """Pagination is limit/offset."""
    events = [signal(cid, moment(seconds=10 + i)) for i in range(5)]
    assert (await post(http, BATCH, events)).status_code == 201
    whole = await stored(http, cid)
    pages = [
        (await http.get(EVENTS, params={"correlation_id": cid, "limit": 2, "offset": o})).json()
        for o in (0, 2, 4)
    ]
    assert [item for page in pages for item in page["data"]] == whole
    assert [page["pagination"]["has_more"] for page in pages] == [True, True, False]


async def test_total_is_counted_apart_from_the_data(
    http: httpx.AsyncClient, emu: Emulator, cid: str
) -> None:
    """total comes from a COUNT run before the data: len(data) can even exceed total."""
    assert (await post(http, EVENTS, signal(cid))).status_code == 201
    emu.faults = Faults(insert_between_count_and_data=2, routes=())
    body = (await http.get(EVENTS, params={"correlation_id": cid, "limit": 10})).json()
    assert (len(body["data"]), body["pagination"]["total"]) == (3, 1)
    assert body["pagination"]["has_more"] is False


async def test_a_newer_row_makes_the_next_page_repeat_an_item(
    http: httpx.AsyncClient, emu: Emulator, cid: str
) -> None:
    """Rows arriving between page requests shift pages: a newer row repeats an item."""
    events = [signal(cid, moment(minutes=10 + i)) for i in range(4)]
    assert (await post(http, BATCH, events)).status_code == 201
    emu.faults = Faults(insert_between_pages=1, routes=())
    first = await http.get(EVENTS, params={"correlation_id": cid, "limit": 2, "offset": 0})
    second = await http.get(EVENTS, params={"correlation_id": cid, "limit": 2, "offset": 2})
    assert first.json()["data"][-1]["event_id"] == second.json()["data"][0]["event_id"]


async def test_a_late_row_with_an_older_timestamp_lands_in_a_region_already_read(
    http: httpx.AsyncClient, emu: Emulator, cid: str
) -> None:
    """A late row with an older timestamp lands in a region already read: the walk misses it
    (and repeats the item it pushed along)."""
    events = [signal(cid, moment(minutes=10 + i)) for i in range(4)]
    assert (await post(http, BATCH, events)).status_code == 201
    late = signal(cid, moment(minutes=10, seconds=30))
    emu.faults = Faults(insert_between_pages=lambda params: [late], routes=())
    first = await http.get(EVENTS, params={"correlation_id": cid, "limit": 2, "offset": 0})
    emu.faults = Faults()
    second = await http.get(EVENTS, params={"correlation_id": cid, "limit": 2, "offset": 2})
    seen = [item["event_timestamp"] for page in (first, second) for item in page.json()["data"]]
    assert late["event_timestamp"] not in seen
    assert seen[1] == seen[2]


# == Responses ==================================================================================


async def test_an_empty_page(http: httpx.AsyncClient) -> None:
    """200: {"data": [], "pagination": {...}}, data [] when empty, Content-Type application/json."""
    response = await http.get(EVENTS, params={"correlation_id": new_cid(), "limit": 5})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    expected = b'{"data":[],"pagination":{"limit":5,"offset":0,"total":0,"has_more":false}}\n'
    assert response.content == expected


async def test_large_bodies_are_chunked(http: httpx.AsyncClient, cid: str) -> None:
    """Large bodies are sent chunked (no Content-Length)."""
    assert (await post(http, BATCH, [signal(cid) for _ in range(20)])).status_code == 201
    response = await http.get(EVENTS, params={"correlation_id": cid, "limit": 20})
    assert "content-length" not in response.headers
    assert len(response.json()["data"]) == 20


async def test_a_minimal_event_on_read(http: httpx.AsyncClient, cid: str) -> None:
    """An event on read: fields in the service's order, empty ones omitted, defaults filled."""
    at = moment(minutes=3)
    assert (await post(http, EVENTS, signal(cid, at))).status_code == 201
    response = await http.get(EVENTS, params={"correlation_id": cid, "limit": 1})
    expected = (
        f'{{"data":[{{"event_id":"<id>","event_timestamp":"{rfc3339(at)}","event_date":"{at.date().isoformat()}",'
        '"event_type":"gateway.signal.received","version":"1.0","event_category":"gateway",'
        f'"event_action":"received","event_outcome":"success","correlation_id":"{cid}",'
        '"parent_event_id":null,"parent_event_date":null,"resource_type":"gateway",'
        f'"resource_id":"{cid}","severity":"info","actor_id":"gateway-service",'
        '"actor_type":"service","retention_days":2555,"is_sensitive":false,'
        '"event_hash":"<hash>","previous_event_hash":"","legal_hold":false,'
        '"legal_hold_reason":"","legal_hold_placed_by":"","legal_hold_placed_at":null,'
        '"event_data":{"event_type":"gateway.signal.received",'
        '"signal_name":"KubePodCrashLooping"}}],'
        '"pagination":{"limit":1,"offset":0,"total":1,"has_more":false}}\n'
    )
    assert masked(response.content) == expected.encode()


async def test_a_full_event_on_read(http: httpx.AsyncClient, cid: str) -> None:
    """An event on read: the optional fields in the service's order, strings HTML-escaped."""
    at = moment(minutes=3)
    optional = {
        "resource_type": "Pod",
        "resource_id": "p-1",
        "namespace": "ns",
        "cluster_id": "c-1",
        "severity": "warning",
        "duration_ms": 12,
        "error_code": "E1",
        "error_message": "boom <&>",
        "actor_id": "me",
        "actor_type": "user",
        "actor_ip": "10.0.0.1",
        "retention_days": 30,
        "is_sensitive": True,
    }
    assert (await post(http, EVENTS, signal(cid, at, **optional))).status_code == 201
    response = await http.get(EVENTS, params={"correlation_id": cid, "limit": 1})
    expected = (
        f'{{"data":[{{"event_id":"<id>","event_timestamp":"{rfc3339(at)}","event_date":"{at.date().isoformat()}",'
        '"event_type":"gateway.signal.received","version":"1.0","event_category":"gateway",'
        f'"event_action":"received","event_outcome":"success","correlation_id":"{cid}",'
        '"parent_event_id":null,"parent_event_date":null,"resource_type":"Pod",'
        '"resource_id":"p-1","namespace":"ns","cluster_id":"c-1","severity":"warning",'
        '"duration_ms":12,"error_code":"E1","error_message":"boom \\u003c\\u0026\\u003e",'
        '"actor_id":"me","actor_type":"user","actor_ip":"10.0.0.1","retention_days":30,'
        '"is_sensitive":true,"event_hash":"<hash>","previous_event_hash":"","legal_hold":false,'
        '"legal_hold_reason":"","legal_hold_placed_by":"","legal_hold_placed_at":null,'
        '"event_data":{"event_type":"gateway.signal.received",'
        '"signal_name":"KubePodCrashLooping"}}],'
        '"pagination":{"limit":1,"offset":0,"total":1,"has_more":false}}\n'
    )
    assert masked(response.content) == expected.encode()


@pytest.mark.parametrize(
    ("fraction", "offset", "read"),
    [
        (".123456", "Z", ".123456Z"),
        (".120000", "Z", ".12Z"),
        (".000", "Z", "Z"),
        (".5", "+02:00", ".5Z"),
        (".1234567", "Z", ".123456Z"),
    ],
)
async def test_event_timestamp_reads_back_in_utc_microseconds(
    http: httpx.AsyncClient, cid: str, fraction: str, offset: str, read: str
) -> None:
    """event_timestamp: UTC, microsecond precision, trailing zeros trimmed, Z; event_date."""
    at = moment(hours=3).replace(microsecond=0)
    local = at.astimezone(_PLUS_TWO) if offset != "Z" else at
    written = local.strftime("%Y-%m-%dT%H:%M:%S") + fraction + offset
    response = await post(http, EVENTS, signal(cid, event_timestamp=written))
    assert response.status_code == 201, response.text
    [item] = await stored(http, cid)
    assert item["event_timestamp"] == at.strftime("%Y-%m-%dT%H:%M:%S") + read
    assert item["event_date"] == at.date().isoformat()


async def test_parent_event_date_is_the_parents_midnight(http: httpx.AsyncClient, cid: str) -> None:
    """parent_event_date: a full timestamp at midnight (the parent row's date)."""
    parent_at = moment(days=2)
    parent = await post(http, EVENTS, signal(cid, parent_at))
    parent_id = parent.json()["event_id"]
    child = signal(cid, parent_event_id=parent_id, parent_event_date=rfc3339(moment(hours=1)))
    assert (await post(http, EVENTS, child)).status_code == 201
    [newest, _] = await stored(http, cid)
    assert newest["parent_event_id"] == parent_id
    assert newest["parent_event_date"] == f"{parent_at.date().isoformat()}T00:00:00Z"


async def test_previous_event_hash_links_a_correlation_ids_events(
    http: httpx.AsyncClient, cid: str
) -> None:
    """previous_event_hash is "" for the first event of a correlation id, then the last hash."""
    for minutes in (5, 4):
        assert (await post(http, EVENTS, signal(cid, moment(minutes=minutes)))).status_code == 201
    newest, first = await stored(http, cid)
    assert first["previous_event_hash"] == ""
    assert newest["previous_event_hash"] == first["event_hash"]


@pytest.mark.parametrize(
    ("written", "read"), [({}, {"severity": "info"}), ({"severity": None}, {})]
)
async def test_severity_is_info_when_omitted_and_absent_when_null(
    http: httpx.AsyncClient, cid: str, written: dict[str, Any], read: dict[str, Any]
) -> None:
    """severity reads back as "info" when the writer omitted it, absent when it sent null."""
    assert (await post(http, EVENTS, signal(cid, **written))).status_code == 201
    [item] = await stored(http, cid)
    assert {key: item[key] for key in ("severity",) if key in item} == read


async def test_event_data_comes_back_normalised(http: httpx.AsyncClient, cid: str) -> None:
    """event_data: keys sorted, numbers through float64, unknown keys dropped, date-times
    without sub-seconds."""
    data = (
        b'{"signal_name":"S","ratio":2.50,"occurrence_count":3,'
        b'"first_seen":"2026-01-02T03:04:05.678+02:00","labels":{"z":"1","a":"<2>"},'
        b'"nested":{"level":9007199254740993,"n":{"level":1},"dropped":true},'
        b'"original_payload":{"kept":0.0000001,"B":[1,2.0]},'
        b'"not_in_the_schema":1,"event_type":"gateway.signal.received"}'
    )
    event = signal(cid)
    event["event_data"] = "DATA"
    body = json.dumps(event).encode().replace(b'"DATA"', data)
    assert (await post(http, EVENTS, body)).status_code == 201, "written"
    response = await http.get(EVENTS, params={"correlation_id": cid, "limit": 1})
    expected = (
        b'"event_data":{"event_type":"gateway.signal.received","first_seen":'
        b'"2026-01-02T03:04:05+02:00","labels":{"a":"\\u003c2\\u003e","z":"1"},'
        b'"nested":{"level":9007199254740992,"n":{"level":1}},"occurrence_count":3,'
        b'"original_payload":{"B":[1,2],"kept":1e-7},"ratio":2.5,"signal_name":"S"}}]'
    )
    assert expected in response.content


async def test_event_data_of_a_type_whose_schema_omits_event_type_keeps_it(
    http: httpx.AsyncClient, cid: str
) -> None:
    """event_data's shape is chosen by event_data.event_type, which the service always keeps."""
    data = {
        "event_type": "aianalysis.phase.transition",
        "old_phase": "Investigating",
        "new_phase": "Analyzing",
        "extra": "dropped",
    }
    event = signal(cid, event_type="aianalysis.phase.transition", event_data=data)
    assert (await post(http, EVENTS, event)).status_code == 201
    [item] = await stored(http, cid)
    assert list(item["event_data"].items()) == [
        ("event_type", "aianalysis.phase.transition"),
        ("new_phase", "Analyzing"),
        ("old_phase", "Investigating"),
    ]


# == Errors =====================================================================================


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"{EVENTS}?limit=0", None),
        ("POST", EVENTS, {"version": "1.0"}),
        ("POST", BATCH, {"not": "an array"}),
    ],
)
async def test_validation_400_is_one_opaque_body(
    http: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    """Middleware validation 400: one opaque body, no instance without X-Request-ID."""
    content = json.dumps(body).encode() if body is not None else None
    response = await http.request(method, path, content=content, headers=JSON_TYPE)
    assert (response.status_code, response.content) == (400, VALIDATION_400)
    assert response.headers["content-type"] == PROBLEM
    assert "x-request-id" not in response.headers


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", f"{EVENTS}?event_outcome=partial", None), ("POST", BATCH, {"not": "an array"})],
)
async def test_validation_400_names_the_request_path_and_echoes_the_request_id(
    http: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    """With X-Request-ID: instance is the request path, the id comes back as a header only."""
    content = json.dumps(body).encode() if body is not None else None
    headers = {**JSON_TYPE, "X-Request-ID": "req-77"}
    response = await http.request(method, path, content=content, headers=headers)
    instance = path.split("?")[0]
    assert response.content == VALIDATION_400.replace(
        b'"detail":"The request did not pass OpenAPI schema validation",',
        b'"detail":"The request did not pass OpenAPI schema validation","instance":"'
        + instance.encode()
        + b'",',
    )
    assert response.headers["x-request-id"] == "req-77"


@pytest.mark.parametrize(
    "params",
    [
        {"detail_key": "signal_name"},
        {"detail_value": "x"},
        {"since": "yesterday"},
        {"until": "2025-13-45"},
    ],
    ids=["key-without-value", "value-without-key", "bad-since", "bad-until"],
)
async def test_handler_400_for_query_parameters(
    http: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """Handler 400: unpaired detail_key/detail_value or a bad since/until (field_errors query)."""
    response = await http.get(EVENTS, params=params)
    assert (response.status_code, response.content) == (400, query_400("query"))
    assert response.headers["content-type"] == PROBLEM


@pytest.mark.parametrize("limit", ["0x10", "01750"])
async def test_handler_400_for_a_limit_out_of_range_past_the_middleware(
    http: httpx.AsyncClient, limit: str
) -> None:
    """A limit outside 1-1000 reaching the handler: the same shape, field_errors pagination.

    The middleware parses with base prefixes (0x10 is 16, 01750 octal 1000), the handler with
    Sscanf %d (0 and 1750).
    """
    response = await http.get(EVENTS, params={"limit": limit})
    assert (response.status_code, response.content) == (400, query_400("pagination"))


async def test_a_database_error_is_500(http: httpx.AsyncClient, emu: Emulator) -> None:
    """500 on a database error (type .../database-error)."""
    emu.faults = Faults(database_down=True, routes=())
    response = await http.get(EVENTS, params={"limit": 1})
    assert response.status_code == 500
    assert response.content == (
        b'{"detail":"Failed to query audit events from database",'
        b'"instance":"/api/v1/audit/events","status":500,"title":"Database Error",'
        b'"type":"https://kubernaut.ai/problems/database-error"}\n'
    )


async def test_the_rate_limiter_answers_429_with_retry_after(
    http: httpx.AsyncClient, emu: Emulator
) -> None:
    """429 with Retry-After (rate limiter)."""
    emu.faults = Faults(rate_429=1.0, retry_after="3", routes=("query",))
    response = await http.get(EVENTS, params={"limit": 1})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "3"
    assert response.headers["content-type"] == PROBLEM


# == Exact bodies ===============================================================================


def _cases() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Bodies the middleware refuses: envelope changes, event_data changes."""
    payload = {"event_type": "gateway.signal.received", "signal_name": "S"}
    return {
        "unknown-event-category": ({"event_category": "quantumcomputing"}, payload),
        "unknown-event-data-type": ({}, {"event_type": "brand.new.type", "signal_name": "S"}),
        "missing-event-data-type": ({}, {"signal_name": "S"}),
        "missing-required-payload-field": ({}, {"event_type": "gateway.signal.received"}),
        "payload-enum": (
            {"event_type": "aianalysis.phase.transition"},
            {"event_type": "aianalysis.phase.transition", "old_phase": "a", "new_phase": "b"},
        ),
        "payload-type": ({}, {**payload, "occurrence_count": "3"}),
        "payload-int32": ({}, {**payload, "occurrence_count": 2**31}),
        "date-time-lower-case-t": ({"event_timestamp": "2026-01-02t03:04:05Z"}, payload),
        "null-not-nullable": ({"actor_id": None}, payload),
    }


@pytest.mark.parametrize("case", list(_cases()))
async def test_validation_400_for_any_schema_failure(
    http: httpx.AsyncClient, cid: str, case: str
) -> None:
    """Validation 400 for any schema failure: unknown event_category, unknown or missing
    event_data.event_type, a missing required payload field..."""
    envelope, data = _cases()[case]
    response = await post(http, EVENTS, signal(cid, event_data=data, **envelope))
    assert (response.status_code, response.content) == (400, VALIDATION_400)
    assert await stored(http, cid) == []


async def test_validation_400_without_a_json_content_type(
    http: httpx.AsyncClient, cid: str
) -> None:
    """A body without Content-Type: application/json fails validation."""
    content = json.dumps(signal(cid)).encode()
    response = await http.post(EVENTS, content=content, headers={"Content-Type": "text/plain"})
    assert (response.status_code, response.content) == (400, VALIDATION_400)


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"event_timestamp": timedelta(days=8)}, "audit event request failed validation"),
        ({"event_timestamp": timedelta(minutes=-61)}, "audit event request failed validation"),
        (
            {"event_data": {"event_type": "gateway.signal.received", "signal_name": "x" * 262145}},
            "event_data exceeds size or nesting depth limits",
        ),
        (
            {"parent_event_id": "8a0f6bb1-2d7e-4d43-9a57-5a1f0b1c3d4e"},
            "parent event does not exist",
        ),
        ({"parent_event_id": None}, "parent event does not exist"),
    ],
    ids=["older-than-7-days", "over-60-minutes-ahead", "event-data-too-large", "no-parent", "null"],
)
async def test_write_handler_400_is_the_plain_form(
    http: httpx.AsyncClient, cid: str, change: dict[str, Any], detail: str
) -> None:
    """Write-handler 400s (timestamp window, event_data size/depth, parent not found; a null
    parent counts as set): the plain form, no instance."""
    # A timestamp is an age, taken now: parameters are made at collection, maybe minutes earlier.
    change = {
        k: rfc3339(moment(seconds=v.total_seconds())) if isinstance(v, timedelta) else v
        for k, v in change.items()
    }
    response = await post(http, EVENTS, signal(cid, **change))
    assert (response.status_code, response.content) == (400, plain_400(detail))
    assert response.headers["content-type"] == PROBLEM
    assert await stored(http, cid) == []


def _nested(depth: int) -> dict[str, Any]:
    """A payload nested ``depth`` objects deep (through its free-form member)."""
    data: dict[str, Any] = {"event_type": "gateway.signal.received", "signal_name": "deep"}
    inner, key = data, "original_payload"
    for _ in range(depth - 1):
        inner[key] = {}
        inner, key = inner[key], "a"
    return data


@pytest.mark.parametrize(
    ("index", "event", "detail"),
    [
        (1, {"event_timestamp": rfc3339(moment(days=9))}, "event at index 1 failed validation"),
        (
            0,
            {"event_data": _nested(11)},
            "event at index 0: event_data exceeds size or nesting depth limits",
        ),
        (
            1,
            {"parent_event_id": "8a0f6bb1-2d7e-4d43-9a57-5a1f0b1c3d4e"},
            "event at index 1: parent event does not exist",
        ),
    ],
    ids=["window", "depth", "parent"],
)
async def test_batch_handler_400_names_the_index_and_stores_nothing(
    http: httpx.AsyncClient, cid: str, index: int, event: dict[str, Any], detail: str
) -> None:
    """Batch: "event at index N failed validation"; a rejected batch stores nothing."""
    batch = [signal(cid), signal(cid)]
    batch[index] = signal(cid, **event)
    response = await post(http, BATCH, batch)
    assert (response.status_code, response.content) == (400, plain_400(detail))
    assert await stored(http, cid) == []


@pytest.mark.parametrize(
    "change",
    [
        {"parent_event_id": "not-a-uuid"},
        {"event_timestamp": "2026-02-31T03:04:05Z"},
        {"duration_ms": 1.0},
        {
            "event_data": {
                "event_type": "gateway.signal.received",
                "signal_name": "S",
                "fingerprint": "xyz",
            }
        },
    ],
    ids=["bad-uuid", "feb-31", "float-for-integer", "bad-uuid-in-payload"],
)
@pytest.mark.parametrize("many", [False, True], ids=["single", "batch"])
async def test_typed_decoder_400(
    http: httpx.AsyncClient, cid: str, change: dict[str, Any], many: bool
) -> None:
    """A body the typed decoder rejects (bad UUID, Feb 31, 1.0 for an integer): invalid_request."""
    event = signal(cid, **change)
    response = await post(http, BATCH if many else EVENTS, [event] if many else event)
    detail = (
        "The request body must be a valid JSON array of audit event objects"
        if many
        else "The request body could not be parsed as valid JSON"
    )
    assert response.status_code == 400
    assert response.content == plain_400(detail, "invalid_request", "Invalid Request")


async def test_an_empty_batch_is_refused(http: httpx.AsyncClient) -> None:
    """Batch: [] gives 400 "batch cannot be empty"."""
    response = await post(http, BATCH, [])
    assert (response.status_code, response.content) == (400, plain_400("batch cannot be empty"))


async def test_a_batch_over_500_is_refused_with_batch_size_exceeded(
    http: httpx.AsyncClient, cid: str
) -> None:
    """Batch: more than 500 events gives 400 batch-size-exceeded, "Batch Size Exceeded" and an
    instance."""
    response = await post(http, BATCH, [signal(cid)] * 501)
    assert response.status_code == 400
    assert response.content == (
        b'{"detail":"batch size 501 exceeds maximum allowed batch size of 500",'
        b'"instance":"/api/v1/audit/events/batch","status":400,"title":"Batch Size Exceeded",'
        b'"type":"https://kubernaut.ai/problems/batch-size-exceeded"}\n'
    )
    assert (await post(http, BATCH, [signal(cid)] * 500)).status_code == 201


async def test_a_body_over_5_mib_is_413(http: httpx.AsyncClient, cid: str) -> None:
    """413 (body over 5 MiB by Content-Length): request-too-large, "Request Entity Too Large"."""
    content = json.dumps([signal(cid)]).encode() + b" " * (5 * 1024 * 1024)
    response = await http.post(BATCH, content=content, headers=JSON_TYPE)
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM
    assert response.content == (
        b'{"detail":"Request body exceeds the maximum allowed size.","status":413,'
        b'"title":"Request Entity Too Large",'
        b'"type":"https://kubernaut.ai/problems/request-too-large"}\n'
    )


async def test_201_for_one_event(http: httpx.AsyncClient, cid: str) -> None:
    """201, one event: event_id, event_timestamp (RFC 3339, whole seconds), message."""
    at = moment(minutes=2)
    written = at.astimezone(_PLUS_TWO).isoformat()
    response = await post(http, EVENTS, signal(cid, event_timestamp=written))
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    whole = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert masked(response.content) == (
        b'{"event_id":"<id>","event_timestamp":"' + whole.encode() + b'",'
        b'"message":"Audit event created successfully"}\n'
    )
    [item] = await stored(http, cid)
    assert item["event_id"] == response.json()["event_id"]


async def test_201_for_a_batch_lists_ids_in_input_order(http: httpx.AsyncClient, cid: str) -> None:
    """201, batch: {"event_ids": [...in input order...], "message": "N audit events created
    successfully"}."""
    names = ["first", "second", "third"]
    batch = [
        signal(cid, event_data={"event_type": "gateway.signal.received", "signal_name": name})
        for name in names
    ]
    response = await post(http, BATCH, batch)
    assert response.status_code == 201
    assert masked(response.content) == (
        b'{"event_ids":["<id>","<id>","<id>"],"message":"3 audit events created successfully"}\n'
    )
    by_id = {
        item["event_id"]: item["event_data"]["signal_name"] for item in await stored(http, cid)
    }
    assert [by_id[event_id] for event_id in response.json()["event_ids"]] == names


async def test_202_for_one_event_in_the_dead_letter_queue(
    http: httpx.AsyncClient, emu: Emulator, cid: str
) -> None:
    """202 (dead-letter queue): {"status": "accepted", "message": "audit event queued for async
    processing"}."""
    emu.faults = Faults(database_down=True, routes=())
    response = await post(http, EVENTS, signal(cid))
    assert response.status_code == 202
    assert response.content == (
        b'{"status":"accepted","message":"audit event queued for async processing"}\n'
    )


async def test_202_for_a_batch_in_the_dead_letter_queue(
    http: httpx.AsyncClient, emu: Emulator, cid: str
) -> None:
    """202, batch: "N audit events queued for async processing via DLQ", plus "count"."""
    emu.faults = Faults(database_down=True, routes=())
    response = await post(http, BATCH, [signal(cid), signal(cid)])
    assert response.status_code == 202
    assert response.content == (
        b'{"status":"accepted","message":"2 audit events queued for async processing via DLQ",'
        b'"count":2}\n'
    )


# == Writes =====================================================================================

REQUIRED = [
    "version",
    "event_type",
    "event_timestamp",
    "event_category",
    "event_action",
    "event_outcome",
    "correlation_id",
    "event_data",
]


@pytest.mark.parametrize("name", REQUIRED)
async def test_required_members(http: httpx.AsyncClient, cid: str, name: str) -> None:
    """Required: version, event_type, event_timestamp, event_category, event_action,
    event_outcome, correlation_id, event_data."""
    event = signal(cid)
    del event[name]
    response = await post(http, EVENTS, event)
    assert (response.status_code, response.content) == (400, VALIDATION_400)


@pytest.mark.parametrize(("length", "status"), [(0, 400), (255, 201), (256, 400)])
async def test_correlation_id_is_1_to_255_characters(
    http: httpx.AsyncClient, length: int, status: int
) -> None:
    """correlation_id: 1-255 characters."""
    cid = (new_cid() + "x" * 255)[:length]
    assert (await post(http, EVENTS, signal(cid))).status_code == status


@pytest.mark.parametrize(
    "at", [{"days": 6, "hours": 23}, {"minutes": -59}], ids=["6d23h-ago", "59m-ahead"]
)
async def test_timestamps_inside_the_window_are_stored(
    http: httpx.AsyncClient, cid: str, at: dict[str, float]
) -> None:
    """The timestamp must lie within the last 7 days and at most 60 minutes ahead."""
    assert (await post(http, EVENTS, signal(cid, moment(**at)))).status_code == 201


async def test_event_data_at_its_limits_is_stored(http: httpx.AsyncClient, cid: str) -> None:
    """event_data at most 256 KiB, nesting depth at most 10."""
    base = json.dumps({"event_type": "gateway.signal.received", "signal_name": ""})
    full = {"event_type": "gateway.signal.received", "signal_name": "x" * (262144 - len(base))}
    batch = [signal(cid, event_data=full), signal(cid, event_data=_nested(10))]
    assert (await post(http, BATCH, batch)).status_code == 201


@pytest.mark.parametrize(
    ("user", "actor"),
    [
        (None, ("service", "gateway-service")),
        ("alice@example.com", ("user", "alice@example.com")),
        ("system:serviceaccount:kubernaut:gateway", ("service", "gateway-service")),
    ],
    ids=["no-identity", "person", "service-account"],
)
async def test_actor_defaults(
    http: httpx.AsyncClient, cid: str, user: str | None, actor: tuple[str, str]
) -> None:
    """Defaults: actor_type "service", actor_id "<event_category>-service"; "user" and the
    caller's identity when X-Auth-Request-User names a person."""
    headers = {"X-Auth-Request-User": user} if user else None
    assert (await post(http, EVENTS, signal(cid), headers)).status_code == 201
    [item] = await stored(http, cid)
    assert (item["actor_type"], item["actor_id"]) == actor


@pytest.mark.parametrize("retention", [None, 0, -5])
async def test_resource_retention_and_severity_defaults(
    http: httpx.AsyncClient, cid: str, retention: int | None
) -> None:
    """Defaults: resource_type = category, resource_id = correlation id, retention_days 2555
    (also when <= 0), severity "info"."""
    extra: dict[str, Any] = {} if retention is None else {"retention_days": retention}
    assert (await post(http, EVENTS, signal(cid, **extra))).status_code == 201
    [item] = await stored(http, cid)
    read = (item["resource_type"], item["resource_id"], item["retention_days"], item["severity"])
    assert read == ("gateway", cid, 2555, "info")


async def test_202_means_not_stored_yet(http: httpx.AsyncClient, emu: Emulator, cid: str) -> None:
    """202 means "not stored yet": the event sits in a dead-letter queue, replayed later."""
    emu.faults = Faults(dlq_rate=1.0, routes=())
    assert (await post(http, EVENTS, signal(cid))).status_code == 202
    assert await stored(http, cid) == []
    emu.faults = Faults()
    emu.replay_dead_letters()
    assert len(await stored(http, cid)) == 1
