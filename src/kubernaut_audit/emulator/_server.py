"""Serving an ASGI app with uvicorn on a loopback port, in the current loop or a thread."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Generator, Iterator

import anyio
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from ._wire import SERVED


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The emulator is a guest in someone else's process: leave Ctrl-C to the host.
        # tests/test_dependency_reaches.py fails if uvicorn stops capturing signals here.
        yield


def _mark_served(app: ASGIApp) -> ASGIApp:
    async def served(scope: Scope, receive: Receive, send: Send) -> None:
        scope["extensions"] = {**scope.get("extensions", {}), SERVED: {}}
        await app(scope, receive, send)

    return served


def _prepare(app: ASGIApp, host: str, port: int) -> tuple[_Server, socket.socket, str]:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and without
    # it a response written in two parts waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(
        _mark_served(app),
        http="h11",
        lifespan="off",
        log_level="warning",
        server_header=False,
        timeout_graceful_shutdown=2,
    )
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    return _Server(config), sock, f"http://{shown}:{bound}"


@contextlib.asynccontextmanager
async def serve(app: ASGIApp, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``app`` in the running asyncio loop; yield its URL, stop on exit."""
    server, sock, url = _prepare(app, host, port)
    with sock:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            while not server.started:
                if server.should_exit:
                    raise RuntimeError("the emulator's server failed to start")
                await anyio.sleep(0.005)
            try:
                yield url
            finally:
                server.should_exit = True


@contextlib.contextmanager
def serve_in_thread(app: ASGIApp, host: str, port: int) -> Iterator[str]:
    """Serve ``app`` from a background thread with its own loop; yield its URL, join on exit."""
    server, sock, url = _prepare(app, host, port)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(server.serve([sock]))
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"kubernaut-audit-emulator {url}", daemon=True)
    with sock:
        thread.start()
        while not server.started:
            if failure or not thread.is_alive():
                raise RuntimeError("the emulator's server failed to start") from (
                    failure[0] if failure else None
                )
            thread.join(0.005)
        try:
            yield url
        finally:
            server.should_exit = True
            thread.join()
