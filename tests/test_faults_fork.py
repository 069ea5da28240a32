"""Issue 6, item 20: a client created before fork() never reuses the parent's sockets.

The emulator is served on loopback behind a wrapper that records each request's client port:
a request on a pooled connection shows the same port, a new connection a new one.
"""

from __future__ import annotations

import os
import signal
import time
import traceback
from collections.abc import Callable
from typing import NoReturn

import anyio
from anyio.from_thread import start_blocking_portal
from faultkit import planted
from starlette.types import ASGIApp, Receive, Scope, Send

from kubernaut_audit import AsyncAuditClient, AuditClient
from kubernaut_audit.emulator import Emulator
from kubernaut_audit.emulator._server import serve_in_thread

CID = "rr-fork"


class Peers:
    """Records the client port of every HTTP request before passing it on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.ports: list[int] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("client"):
            self.ports.append(scope["client"][1])
        await self.app(scope, receive, send)


def in_child(work: Callable[[], object]) -> NoReturn:
    """Run ``work`` in the forked child and leave without running the parent's cleanup."""
    code = 1
    try:
        work()
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def child_status(pid: int, timeout: float = 20.0) -> int:
    """The child's exit code (killing it if it hangs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -1


def test_async_client_in_a_forked_child_opens_its_own_connection() -> None:
    """An AsyncAuditClient used before fork() connects afresh in the child, and the parent's
    pooled connection keeps working."""
    emu = Emulator()
    planted(emu, CID)
    peers = Peers(emu.app)
    with serve_in_thread(peers, "127.0.0.1", 0) as url, start_blocking_portal() as portal:
        client = AsyncAuditClient(base_url=url)

        async def query() -> int:
            return len((await client.query_audit_events(correlation_id=CID)).events)

        assert portal.call(query) == 1
        pid = os.fork()
        if pid == 0:
            in_child(lambda: anyio.run(query))
        status = child_status(pid)
        assert portal.call(query) == 1
        portal.call(client.aclose)
    assert status == 0
    first, child, again = peers.ports
    assert child != first
    assert again == first


def test_sync_client_in_a_forked_child_starts_its_own_loop_and_connection() -> None:
    """An AuditClient used before fork() starts its own portal and connection in the child (the
    parent's portal thread does not exist there), closes cleanly, and the parent's client keeps
    its connection."""
    emu = Emulator()
    planted(emu, CID)
    peers = Peers(emu.app)
    with serve_in_thread(peers, "127.0.0.1", 0) as url:
        client = AuditClient(base_url=url)
        try:
            assert len(client.query_audit_events(correlation_id=CID).events) == 1

            def child_work() -> None:
                assert len(client.query_audit_events(correlation_id=CID).events) == 1
                client.close()

            pid = os.fork()
            if pid == 0:
                in_child(child_work)
            status = child_status(pid)
            assert len(client.query_audit_events(correlation_id=CID).events) == 1
        finally:
            client.close()
    assert status == 0
    first, child, again = peers.ports
    assert child != first
    assert again == first


def test_forked_child_closing_an_unused_inherited_sync_client_does_not_hang() -> None:
    """A child that only closes (or drops) the AuditClient it inherited exits at once."""
    emu = Emulator()
    with serve_in_thread(emu.app, "127.0.0.1", 0) as url:
        client = AuditClient(base_url=url)
        try:
            assert client.ready()
            pid = os.fork()
            if pid == 0:
                in_child(client.close)
            status = child_status(pid, timeout=10.0)
        finally:
            client.close()
    assert status == 0
