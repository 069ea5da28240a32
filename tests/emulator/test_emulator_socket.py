"""The emulator served over a real loopback socket by uvicorn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from emulator_helpers import BATCH, EVENTS, event

from kubernaut_audit.emulator import Emulator, Faults


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Emulator, str]]:
    emu = Emulator()
    with emu.serve_in_thread() as url:
        yield emu, url
    emu.close()


@pytest.fixture
def emulator_url(served: tuple[Emulator, str]) -> Iterator[tuple[Emulator, str]]:
    emu, _ = served
    yield served
    emu.faults = Faults()


def test_url_is_loopback_with_a_bound_port(emulator_url: tuple[Emulator, str]) -> None:
    """serve_in_thread yields http://127.0.0.1:PORT with the port it bound."""
    _, url = emulator_url
    assert url.startswith("http://127.0.0.1:")
    assert int(url.rsplit(":", 1)[1]) > 0


def test_write_then_query_over_http(emulator_url: tuple[Emulator, str], cid: str) -> None:
    """A batch written over HTTP is returned by a query over HTTP."""
    _, url = emulator_url
    with httpx.Client(base_url=url) as http:
        assert http.post(BATCH, json=[event(cid), event(cid)]).status_code == 201
        body = http.get(EVENTS, params={"correlation_id": cid, "limit": 10}).json()
    assert body["pagination"]["total"] == 2


def test_large_body_is_chunked_on_the_wire(emulator_url: tuple[Emulator, str], cid: str) -> None:
    """Over HTTP a large page arrives with Transfer-Encoding: chunked."""
    emu, url = emulator_url
    emu.insert_events([event(cid) for _ in range(10)])
    with httpx.Client(base_url=url) as http:
        response = http.get(EVENTS, params={"correlation_id": cid, "limit": 10})
    assert response.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.headers
    assert len(response.json()["data"]) == 10


def test_readyz_and_errors_on_the_wire(emulator_url: tuple[Emulator, str]) -> None:
    """/readyz, 404 and 405 are framed the same over HTTP, with no Server header."""
    _, url = emulator_url
    with httpx.Client(base_url=url) as http:
        ready = http.get("/readyz")
        missing = http.get("/health")
        wrong = http.put(EVENTS)
    assert ready.headers["content-type"] == "text/plain; charset=utf-8"
    assert "server" not in ready.headers
    assert missing.text == "404 page not found\n"
    assert wrong.status_code == 405
    assert wrong.headers.get_list("allow") == ["GET, POST"] or wrong.headers.get_list("allow") == [
        "GET",
        "POST",
    ]
    assert wrong.content == b""


@pytest.mark.parametrize(
    "faults",
    [Faults(drop_connection_rate=1.0), Faults(truncated_body_rate=1.0)],
    ids=["drop", "truncate"],
)
def test_broken_bodies_break_the_connection(
    emulator_url: tuple[Emulator, str], faults: Faults, cid: str
) -> None:
    """Over HTTP a dropped or truncated body fails the client with a transport error."""
    emu, url = emulator_url
    emu.insert_events([event(cid) for _ in range(10)])
    emu.faults = faults
    with httpx.Client(base_url=url) as http, pytest.raises(httpx.TransportError):
        http.get(EVENTS, params={"correlation_id": cid})


def test_slow_body_over_http(emulator_url: tuple[Emulator, str], cid: str) -> None:
    """A trickled body still arrives whole."""
    emu, url = emulator_url
    emu.insert_events([event(cid) for _ in range(2)])
    emu.faults = Faults(slow_body=0.01)
    with httpx.Client(base_url=url) as http:
        response = http.get(EVENTS, params={"correlation_id": cid})
    assert len(response.json()["data"]) == 2


def test_body_over_5_mib_is_413_over_http(emulator_url: tuple[Emulator, str], cid: str) -> None:
    """A 6 MiB body gets 413 over HTTP."""
    _, url = emulator_url
    with httpx.Client(base_url=url) as http:
        response = http.post(BATCH, content=b"[" + b" " * (6 * 1024 * 1024) + b"]")
    assert response.status_code == 413


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
async def test_serve_in_the_running_loop(cid: str) -> None:
    """serve() runs uvicorn in the current asyncio loop and stops on exit."""
    emu = Emulator()
    async with emu.serve() as url, httpx.AsyncClient(base_url=url) as http:
        assert (await http.post(BATCH, json=[event(cid)])).status_code == 201
        response = await http.get(EVENTS, params={"correlation_id": cid})
        assert response.json()["pagination"]["total"] == 1
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"{url}/readyz")
    emu.close()


def test_file_database_persists(tmp_path: Path, cid: str) -> None:
    """With db=path the events survive a restart of the emulator."""
    db = str(tmp_path / "audit.sqlite")
    first = Emulator(db)
    [event_id] = first.insert_events([event(cid)])
    first.close()
    second = Emulator(db)
    with second.serve_in_thread() as url, httpx.Client(base_url=url) as http:
        body = http.get(EVENTS, params={"correlation_id": cid}).json()
    second.close()
    assert [item["event_id"] for item in body["data"]] == [event_id]
