"""Helpers for the fault tests (tests/test_faults_*.py): a transport that stamps requests with
event-loop times, tiny raw loopback servers, and a count of open TCP connections."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import anyio
import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


class Gate:
    """An auth proxy in front of an ASGI app, as the OAuth proxy before Data Storage: a request
    whose bearer token is in ``accepted`` goes through; any other gets ``status``.

    ``tokens`` lists the bearer token of every request (None when there was none).
    """

    def __init__(self, app: ASGIApp, *, accepted: Iterable[str] = (), status: int = 401) -> None:
        self.app = app
        self.accepted = set(accepted)
        self.status = status
        self.tokens: list[str | None] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        auth = dict(scope["headers"]).get(b"authorization", b"").decode()
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        self.tokens.append(token)
        if token is not None and token in self.accepted:
            await self.app(scope, receive, send)
            return
        body = json.dumps({"title": "denied", "status": self.status}).encode()
        headers = [(b"content-type", b"application/problem+json")]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class Mangle:
    """A proxy in front of an ASGI app that rewrites the JSON of successful query responses."""

    def __init__(self, app: ASGIApp, rewrite: Callable[[dict[str, Any]], None]) -> None:
        self.app = app
        self.rewrite = rewrite

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            if start["status"] == 200:
                document = json.loads(body)
                self.rewrite(document)
                body = json.dumps(document).encode()
            headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)
