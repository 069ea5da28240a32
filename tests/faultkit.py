"""Helpers for the fault tests (tests/test_faults_*.py): a transport that stamps requests with
event-loop times, tiny raw loopback servers, and a count of open TCP connections."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator

import anyio
import httpx

from kubernaut_audit.emulator import Emulator, make_event

#: An in-process client's base URL (any: the ASGI transport ignores the host).
BASE = "http://data-storage.test"


class Stamped(httpx.AsyncBaseTransport):
    """Wraps a transport and records every request with the event-loop time it was sent."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.times: list[float] = []
        self.requests: list[httpx.Request] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.times.append(anyio.current_time())
        self.requests.append(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def planted(emu: Emulator, correlation_id: str, count: int = 1) -> list[str]:
    """Store ``count`` events of ``correlation_id`` directly; return their ids."""
    return emu.insert_events(make_event(correlation_id) for _ in range(count))


def established(port: int) -> int:
    """Open client ends (ESTABLISHED or CLOSE_WAIT) of TCP connections to ``port`` on loopback."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table, encoding="ascii") as f:
            next(f)
            for line in f:
                parts = line.split()
                remote_port = int(parts[2].rsplit(":", 1)[1], 16)
                if remote_port == port and parts[3] in ("01", "08"):
                    count += 1
    return count


class RawServer:
    """A TCP server on 127.0.0.1 that hands each accepted socket to ``handle`` on a thread.

    ``peers`` lists the client ports of the accepted connections, in order.
    """

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self.handle = handle
        self.peers: list[int] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, peer = self._sock.accept()
            except TimeoutError:
                continue
            self.peers.append(peer[1])
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            self.handle(conn)

    @contextlib.contextmanager
    def running(self) -> Iterator[RawServer]:
        acceptor = threading.Thread(target=self._serve, daemon=True)
        acceptor.start()
        try:
            yield self
        finally:
            self._stop.set()
            acceptor.join()
            for thread in self._threads:
                thread.join(5)
            self._sock.close()


def read_request(conn: socket.socket) -> bytes:
    """Read one HTTP request head (these tests send no bodies to raw servers)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
