"""Routes, health and framing of the emulator's non-audit answers."""

from __future__ import annotations

import httpx
import pytest
from emulator_helpers import BATCH, EVENTS

from kubernaut_audit.emulator import Emulator, Faults

pytestmark = pytest.mark.anyio


async def test_readyz_answers_ready_as_sniffed_plain_text(client: httpx.AsyncClient) -> None:
    """/readyz answers 200 {"status":"ready"} typed text/plain; charset=utf-8."""
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


async def test_readyz_not_ready(emulator: Emulator, client: httpx.AsyncClient) -> None:
    """With not_ready, /readyz answers 503 with status not_ready."""
    emulator.faults.not_ready = True
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "not_ready"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize("path", ["/health", "/healthz", "/api/v1/audit", f"{EVENTS}/"])
async def test_unknown_path_is_a_go_404(client: httpx.AsyncClient, path: str) -> None:
    """Unknown paths (including /health, /healthz and a trailing slash) get Go's text 404."""
    response = await client.get(path)
    assert response.status_code == 404
    assert response.text == "404 page not found\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", EVENTS, ["GET", "POST"]),
        ("DELETE", EVENTS, ["GET", "POST"]),
        ("GET", BATCH, ["POST"]),
        ("POST", "/readyz", ["GET"]),
        ("HEAD", BATCH, ["POST"]),
    ],
)
async def test_wrong_method_is_405_with_allow_and_no_body(
    client: httpx.AsyncClient, method: str, path: str, allowed: list[str]
) -> None:
    """A wrong method gets 405, one Allow header per method, an empty untyped body."""
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers.get_list("allow") == allowed
    assert response.content == b""
    assert "content-type" not in response.headers


async def test_admin_routes_are_unknown_paths_unless_enabled(client: httpx.AsyncClient) -> None:
    """Without admin=True, /_emulator/faults is an unknown path."""
    response = await client.get("/_emulator/faults")
    assert response.status_code == 404
    assert response.text == "404 page not found\n"


async def test_request_id_comes_back_only_from_the_validation_middleware(
    client: httpx.AsyncClient,
) -> None:
    """X-Request-ID is echoed by the validation 400 only (chi's RequestID sets no header)."""
    headers = {"X-Request-ID": "req-7"}
    ok = await client.get(EVENTS, params={"limit": 1}, headers=headers)
    refused = await client.get(EVENTS, params={"limit": 0}, headers=headers)
    assert "x-request-id" not in ok.headers
    assert refused.headers["x-request-id"] == "req-7"


async def test_a_body_over_the_cap_is_413_on_any_path(client: httpx.AsyncClient) -> None:
    """The body cap runs before routing: a declared body over 5 MiB is 413 even on /readyz."""
    response = await client.post("/readyz", content=b" " * (5 * 1024 * 1024 + 1))
    assert response.status_code == 413


async def test_readyz_is_not_touched_by_request_faults(
    emulator: Emulator, client: httpx.AsyncClient
) -> None:
    """Request faults skip /readyz unless routes name it."""
    emulator.faults = Faults(error_500_rate=1.0)
    assert (await client.get("/readyz")).status_code == 200
    emulator.faults = Faults(error_500_rate=1.0, routes=("readyz",))
    assert (await client.get("/readyz")).status_code == 500
