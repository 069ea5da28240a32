"""Issue 6, items 15–17: token files rotating under an auth proxy in front of the emulator, the
token never leaking through errors or logs, and never following a redirect to another host.

The proxy (``faultkit.Gate``) lets through the tokens it accepts and answers 401 otherwise, as
the OAuth proxy before Data Storage does. The re-read interval itself (a rotation seen within
60 s without a 401) is tested on ``TokenSource`` with a fake clock in test_auth.py.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
from pathlib import Path

import httpx
import pytest
from faultkit import Gate, RawServer, planted, read_request

from kubernaut_audit import (
    AsyncAuditClient,
    AuditClient,
    AuditError,
    AuthenticationError,
    RetryPolicy,
)
from kubernaut_audit.emulator import Emulator, Faults

pytestmark = pytest.mark.anyio
TOKEN = "sa-token-d2e8f1c4b7a6"
CID = "rr-auth"


def write_token(path: Path, token: str, stamp: int) -> None:
    path.write_text(token + "\n", encoding="utf-8")
    os.utime(path, ns=(stamp, stamp))


def damage_file(path: Path, damage: str) -> None:
    if damage == "missing":
        path.unlink()
    else:
        write_token(path, "", 2_000_000_000)


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    write_token(path, "token-one", 1_000_000_000)
    return path


def gated(accepted: set[str]) -> tuple[Emulator, Gate]:
    emu = Emulator()
    planted(emu, CID)
    return emu, Gate(emu.app, accepted=accepted)


def client_for(gate: Gate, **kwargs: object) -> AsyncAuditClient:
    return AsyncAuditClient(transport=httpx.ASGITransport(app=gate), **kwargs)  # type: ignore[arg-type]


# -- 15: token file rotation ----------------------------------------------------------------


async def test_rotated_token_file_is_reread_after_a_401_and_retried_once(
    token_file: Path,
) -> None:
    """After the proxy starts refusing the old token, one 401 re-reads the rotated file and the
    retry with the new token succeeds."""
    _emu, gate = gated({"token-one"})
    async with client_for(gate, token_file=token_file) as client:
        await client.query_audit_events(correlation_id=CID)
        write_token(token_file, "token-two", 2_000_000_000)
        gate.accepted = {"token-two"}
        page = await client.query_audit_events(correlation_id=CID)
    assert len(page.events) == 1
    assert gate.tokens == ["token-one", "token-one", "token-two"]


async def test_401_after_rotation_is_retried_once_then_raised(token_file: Path) -> None:
    """A proxy refusing the rotated token too: one re-read, one retry, then AuthenticationError."""
    emu, gate = gated(set())
    async with client_for(gate, token_file=token_file) as client:
        write_token(token_file, "token-two", 2_000_000_000)
        with pytest.raises(AuthenticationError):
            await client.query_audit_events(correlation_id=CID)
    assert gate.tokens == ["token-one", "token-two"]
    assert emu.stats.requests == 0  # the emulator behind never saw a request


@pytest.mark.parametrize("damage", ["missing", "empty"])
async def test_token_file_gone_mid_run_keeps_the_last_good_token(
    token_file: Path, damage: str
) -> None:
    """A token file deleted or emptied mid-run (even re-read after a 401) leaves the last good
    token in use."""
    _emu, gate = gated({"token-one"})
    async with client_for(gate, token_file=token_file) as client:
        await client.query_audit_events(correlation_id=CID)
        damage_file(token_file, damage)
        gate.accepted = set()  # one refusal makes the client re-read the file at once
        with pytest.raises(AuthenticationError):
            await client.query_audit_events(correlation_id=CID)
        gate.accepted = {"token-one"}
        page = await client.query_audit_events(correlation_id=CID)
    assert len(page.events) == 1
    assert gate.tokens == ["token-one", "token-one", "token-one"]


# -- 16: the token leaks nowhere --------------------------------------------------------------


def _assert_no_token(exc: BaseException) -> None:
    chain: BaseException | None = exc
    while chain is not None:
        assert TOKEN not in str(chain)
        assert TOKEN not in repr(chain)
        chain = chain.__cause__ or chain.__context__
    assert TOKEN.encode() not in pickle.dumps(exc)


@pytest.mark.parametrize(
    "faults",
    [
        Faults(error_503_rate=1.0),
        Faults(proxy_502_rate=1.0),
        Faults(malformed_json_rate=1.0),
        Faults(drop_connection_rate=1.0),
        Faults(truncated_body_rate=1.0),
    ],
    ids=["503", "502-html", "malformed", "dropped", "truncated"],
)
async def test_token_absent_from_errors_and_debug_logs(
    faults: Faults, caplog: pytest.LogCaptureFixture
) -> None:
    """Whatever the emulator does wrong, the token is in no exception (str, repr, cause chain,
    pickle) and no DEBUG log line."""
    emu = Emulator(faults=faults)
    planted(emu, CID)
    with caplog.at_level(logging.DEBUG):
        async with AsyncAuditClient(
            transport=emu.transport(), token=TOKEN, retry=RetryPolicy(attempts=2, initial=0.0)
        ) as client:
            with pytest.raises(AuditError) as info:
                await client.query_audit_events(correlation_id=CID)
    _assert_no_token(info.value)
    assert caplog.records
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in repr(vars(record))


async def test_token_absent_from_a_refusal_by_the_proxy(caplog: pytest.LogCaptureFixture) -> None:
    """A 401 from the proxy carries no token in the error or the DEBUG logs."""
    _emu, gate = gated(set())
    with caplog.at_level(logging.DEBUG):
        async with client_for(gate, token=TOKEN) as client:
            with pytest.raises(AuthenticationError) as info:
                await client.query_audit_events(correlation_id=CID)
    _assert_no_token(info.value)
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


# -- 17: redirects ----------------------------------------------------------------------------


class Redirect:
    """Two raw loopback servers: ``origin`` (127.0.0.1) answers 307 to ``target`` (localhost,
    another host); each records the request heads it got."""

    def __init__(self) -> None:
        self.heads: dict[str, list[bytes]] = {"origin": [], "target": []}
        self.target = RawServer(self._serve_target)
        self.origin = RawServer(self._serve_origin)

    def _serve_origin(self, conn: socket.socket) -> None:
        self.heads["origin"].append(read_request(conn).lower())
        location = f"http://localhost:{self.target.port}/api/v1/audit/events?limit=100"
        conn.sendall(
            b"HTTP/1.1 307 Temporary Redirect\r\nlocation: %s\r\ncontent-length: 0\r\n"
            b"connection: close\r\n\r\n" % location.encode()
        )

    def _serve_target(self, conn: socket.socket) -> None:
        self.heads["target"].append(read_request(conn).lower())
        body = b'{"data":[],"pagination":{"limit":100,"offset":0,"total":0,"has_more":false}}'
        conn.sendall(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (len(body), body)
        )


@pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
async def test_redirect_to_another_host_does_not_carry_the_token() -> None:
    """Over loopback, a 307 to another host is followed without the Authorization header."""
    redirect = Redirect()
    with redirect.target.running(), redirect.origin.running():
        async with AsyncAuditClient(base_url=redirect.origin.url, token=TOKEN) as client:
            page = await client.query_audit_events(correlation_id=CID)
    assert page.events == []
    [origin], [target] = redirect.heads["origin"], redirect.heads["target"]
    assert f"authorization: bearer {TOKEN}".lower().encode() in origin
    assert b"authorization" not in target


def test_redirect_to_another_host_does_not_carry_the_token_sync() -> None:
    """The blocking client, too, does not carry the token across a redirect to another host."""
    redirect = Redirect()
    with (
        redirect.target.running(),
        redirect.origin.running(),
        AuditClient(base_url=redirect.origin.url, token=TOKEN) as client,
    ):
        client.query_audit_events(correlation_id=CID)
    [origin], [target] = redirect.heads["origin"], redirect.heads["target"]
    assert b"authorization" in origin
    assert b"authorization" not in target
