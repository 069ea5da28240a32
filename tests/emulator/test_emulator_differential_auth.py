"""Differential test of the auth mode: data-storage-behaviour.md, "Authentication".

Raw requests through an emulator with ``tokens=`` (the service's auth middleware), in-process and
over a loopback socket (one server for the module); bodies asserted byte for byte. The
statements come from the document's Routes section (Authentication) and its Exact bodies order
(401 before any 400); where the document names the middleware's behaviour without its bytes,
the bytes are the service's (``about:blank`` problems, keys sorted).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from emulator_helpers import BATCH, EVENTS, PAYLOAD_SPEC, new_cid

from kubernaut_audit.emulator import Emulator, Faults, TokenUser

pytestmark = pytest.mark.anyio

ALICE = "alice@example.com"
GATEWAY = "system:serviceaccount:kubernaut-system:gateway"
TOKENS: dict[str, str | TokenUser] = {
    "tok-alice": ALICE,
    "tok-gateway": GATEWAY,
    "tok-reader": TokenUser("bob@example.com", frozenset({"get"})),
    "tok-writer": TokenUser("carol@example.com", frozenset({"get", "create"})),
    "tok-nothing": TokenUser("eve@example.com", frozenset()),
}
JSON_TYPE = {"Content-Type": "application/json"}
VALIDATION_400 = (
    b'{"detail":"The request did not pass OpenAPI schema validation","status":400,'
    b'"title":"Validation Error","type":"https://kubernaut.ai/problems/validation-error"}\n'
)
FORBIDDEN = (
    b'{"detail":"Insufficient permissions","status":403,"title":"Forbidden","type":"about:blank"}\n'
)
#: (method, path, body) of every /api/v1 route, each with a valid request.
ROUTES: list[tuple[str, str, Any]] = [
    ("GET", f"{EVENTS}?limit=1", None),
    ("POST", EVENTS, "EVENT"),
    ("POST", BATCH, ["EVENT"]),
    ("GET", "/api/v1/audit/export", None),
    ("POST", "/api/v1/audit/verify-chain", {"correlation_id": "rr-x"}),
    ("GET", "/api/v1/audit/legal-hold", None),
    ("POST", "/api/v1/audit/legal-hold", {"correlation_id": "rr-x", "reason": "audit"}),
    ("DELETE", "/api/v1/audit/legal-hold/rr-x", {"release_reason": "done"}),
    ("POST", "/api/v1/audit/remediation-requests/rr-x/reconstruct", None),
]


def unauthorized(detail: str) -> bytes:
    return (
        f'{{"detail":"{detail}","status":401,"title":"Unauthorized","type":"about:blank"}}\n'
    ).encode()


def signal(cid: str) -> dict[str, Any]:
    return {
        "version": "1.0",
        "event_type": "gateway.signal.received",
        "event_timestamp": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "event_category": "gateway",
        "event_action": "received",
        "event_outcome": "success",
        "correlation_id": cid,
        "event_data": {"event_type": "gateway.signal.received", "signal_name": "S"},
    }


def _content(body: Any) -> bytes | None:
    if body is None:
        return None
    if body == "EVENT":
        body = signal(new_cid())
    elif body == ["EVENT"]:
        body = [signal(new_cid())]
    return json.dumps(body).encode()


async def send(
    http: httpx.AsyncClient,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A raw request; ``token`` becomes ``Authorization: Bearer <token>``."""
    sent = {**JSON_TYPE, **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    return await http.request(method, path, content=_content(body), headers=sent)


@pytest.fixture
def anyio_backend() -> str:
    """Raw HTTP does not depend on the event loop: asyncio only."""
    return "asyncio"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    emulator = Emulator(spec=PAYLOAD_SPEC, tokens=TOKENS)
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
        url = request.getfixturevalue("served_url")
        client = httpx.AsyncClient(base_url=url, verify=False, trust_env=False)
    else:
        client = httpx.AsyncClient(transport=emu.transport(), base_url="http://data-storage")
    async with client:
        yield client
    emu.faults = Faults()


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_every_api_route_wants_a_bearer_token(
    http: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    """Authentication is on every /api/v1 route: no Authorization is 401 "Missing
    Authorization header" (application/problem+json, type about:blank)."""
    response = await send(http, method, path, body)
    assert response.status_code == 401
    assert response.content == unauthorized("Missing Authorization header")
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(("method", "path", "body"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_a_valid_token_passes(
    http: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    """It wants Authorization: Bearer <token>: a token holding every verb reaches the handler."""
    response = await send(http, method, path, body, token="tok-alice")
    assert response.status_code not in (401, 403), response.text


@pytest.mark.parametrize("value", ["Basic dG9rLWFsaWNl", "bearer tok-alice", "Bearer", "tok-alice"])
async def test_another_scheme_is_an_invalid_format(http: httpx.AsyncClient, value: str) -> None:
    """401 "Invalid Authorization header format" when it is not Bearer <token>."""
    response = await http.get(EVENTS, params={"limit": 1}, headers={"Authorization": value})
    assert (response.status_code, response.content) == (
        401,
        unauthorized("Invalid Authorization header format"),
    )


async def test_an_empty_bearer_token(emu: Emulator) -> None:
    """401 "Empty Bearer token": over HTTP/1.1 the header reader trims "Bearer " to "Bearer"
    first (Go's as uvicorn's), so it answers "Invalid Authorization header format"."""
    async with httpx.AsyncClient(transport=emu.transport(), base_url="http://ds") as http:
        response = await http.get(EVENTS, headers={"Authorization": "Bearer \t "})
    assert (response.status_code, response.content) == (
        401,
        unauthorized("Invalid Authorization header format"),
    )


async def test_an_unknown_token(http: httpx.AsyncClient) -> None:
    """401 "Invalid or expired token" for a token no user has."""
    response = await send(http, "GET", f"{EVENTS}?limit=1", token="tok-stolen")
    assert (response.status_code, response.content) == (
        401,
        unauthorized("Invalid or expired token"),
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", f"{EVENTS}?limit=0", None),
        ("POST", EVENTS, {"version": "1.0"}),
        ("POST", BATCH, {"not": "an array"}),
        ("GET", "/api/v1/nope", None),
        ("PUT", EVENTS, None),
    ],
    ids=["bad-query", "bad-body", "bad-batch", "unknown-path", "wrong-method"],
)
async def test_401_comes_before_any_400(
    http: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    """The middleware runs before the validator: an unauthenticated request gets 401 before
    any 400 (and before a 404 or 405 under /api/v1)."""
    response = await send(http, method, path, body)
    assert (response.status_code, response.content) == (
        401,
        unauthorized("Missing Authorization header"),
    )


async def test_readyz_needs_no_token(http: httpx.AsyncClient) -> None:
    """/readyz needs no token."""
    response = await http.get("/readyz")
    assert (response.status_code, response.content) == (200, b'{"status":"ready"}')


async def test_a_user_without_get_is_forbidden(http: httpx.AsyncClient) -> None:
    """403 "Forbidden": the RBAC check (verb get for reads)."""
    response = await send(http, "GET", f"{EVENTS}?limit=1", token="tok-nothing")
    assert (response.status_code, response.content) == (403, FORBIDDEN)
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "valid", "invalid"),
    [
        (EVENTS, "EVENT", {"version": "1.0"}),
        (BATCH, ["EVENT"], [{"version": "1.0"}]),
        ("/api/v1/audit/verify-chain", {"correlation_id": "rr-x"}, {"correlation_id": 5}),
    ],
    ids=["write", "batch", "verify-chain"],
)
async def test_create_is_checked_after_validation(
    http: httpx.AsyncClient, path: str, valid: Any, invalid: Any
) -> None:
    """Verb create for writes, checked after the validator: a bad body 400s, a good one 403s."""
    refused = await send(http, "POST", path, invalid, token="tok-reader")
    forbidden = await send(http, "POST", path, valid, token="tok-reader")
    assert (refused.status_code, refused.content) == (400, VALIDATION_400)
    assert (forbidden.status_code, forbidden.content) == (403, FORBIDDEN)


@pytest.mark.parametrize(
    ("method", "path", "valid", "invalid"),
    [
        ("POST", "/api/v1/audit/legal-hold", {"correlation_id": "rr-x", "reason": "r"}, {}),
        ("DELETE", "/api/v1/audit/legal-hold/rr-x", {"release_reason": "r"}, {}),
    ],
    ids=["place", "release"],
)
async def test_update_is_checked_after_validation(
    http: httpx.AsyncClient, method: str, path: str, valid: Any, invalid: Any
) -> None:
    """Verb update for legal-hold changes: a bad body 400s, a good one 403s without update."""
    refused = await send(http, method, path, invalid, token="tok-writer")
    forbidden = await send(http, method, path, valid, token="tok-writer")
    assert (refused.status_code, refused.content) == (400, VALIDATION_400)
    assert (forbidden.status_code, forbidden.content) == (403, FORBIDDEN)


async def test_reads_need_only_get(http: httpx.AsyncClient) -> None:
    """Verb get for reads: a user holding only get queries."""
    response = await send(http, "GET", f"{EVENTS}?limit=1", token="tok-reader")
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("token", "actor"),
    [("tok-alice", ("user", ALICE)), ("tok-gateway", ("service", "gateway-service"))],
    ids=["person", "service-account"],
)
async def test_the_actor_comes_from_the_token_not_the_header(
    http: httpx.AsyncClient, token: str, actor: tuple[str, str]
) -> None:
    """It deletes any client-sent X-Auth-Request-User and sets it to the token's user name: the
    caller's identity (actor_* defaults) always comes from the token."""
    cid = new_cid()
    headers = {"X-Auth-Request-User": "mallory@example.com"}
    written = await send(http, "POST", EVENTS, signal(cid), token=token, headers=headers)
    assert written.status_code == 201
    read = await send(http, "GET", f"{EVENTS}?correlation_id={cid}&limit=1", token=token)
    [item] = read.json()["data"]
    assert (item["actor_type"], item["actor_id"]) == actor


async def test_placed_by_comes_from_the_token(http: httpx.AsyncClient) -> None:
    """placed_by (like exported_by and released_by) always comes from the token."""
    cid = new_cid()
    assert (await send(http, "POST", EVENTS, signal(cid), token="tok-alice")).status_code == 201
    placed = await send(
        http,
        "POST",
        "/api/v1/audit/legal-hold",
        {"correlation_id": cid, "reason": "litigation"},
        token="tok-alice",
        headers={"X-Auth-Request-User": "mallory@example.com"},
    )
    assert placed.status_code == 200, placed.text
    assert placed.json()["placed_by"] == ALICE


async def test_500_when_the_auth_service_is_unavailable(
    http: httpx.AsyncClient, emu: Emulator
) -> None:
    """500 when the auth service is unavailable."""
    emu.faults = Faults(auth_unavailable=True, routes=())
    response = await send(http, "GET", f"{EVENTS}?limit=1", token="tok-alice")
    assert response.status_code == 500
    assert response.content == (
        b'{"detail":"Authentication service unavailable","status":500,'
        b'"title":"Internal Server Error","type":"about:blank"}\n'
    )


async def test_the_body_cap_comes_before_auth(http: httpx.AsyncClient) -> None:
    """The body cap runs before the auth middleware (the service's order): 413 without a token."""
    content = b"[" + b" " * (5 * 1024 * 1024) + b"]"
    response = await http.post(BATCH, content=content, headers=JSON_TYPE)
    assert response.status_code == 413
