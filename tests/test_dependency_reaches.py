"""Guards on the two places the package relies on a dependency's private behaviour.

pyproject bounds anyio and uvicorn below their next major release; these tests fail loudly,
naming the reach, when a release inside those bounds removes or changes what we rely on:

- ``kubernaut_audit._sync._after_fork_in_child`` sets ``BlockingPortal._event_loop_thread_id``
  (anyio, private) to None in a forked child, so that leaving an inherited portal does not wait
  for ever on a thread fork() did not copy.
- ``kubernaut_audit.emulator._server._Server`` overrides ``uvicorn.Server.capture_signals``
  (public name, undocumented hook) so that a served emulator leaves Ctrl-C to its host process.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable

import pytest
import uvicorn
from anyio.from_thread import BlockingPortal, start_blocking_portal

from kubernaut_audit.emulator import Emulator

ANYIO_REACH = (
    "anyio reach broken: kubernaut_audit._sync._after_fork_in_child sets the private "
    "BlockingPortal._event_loop_thread_id = None in forked children"
)
UVICORN_REACH = (
    "uvicorn reach broken: kubernaut_audit.emulator._server._Server overrides "
    "uvicorn.Server.capture_signals to keep uvicorn's signal handlers out of the host process"
)
MISSING = object()


def _child_exit_code(work: Callable[[], object], timeout: float = 20.0) -> int | None:
    """Run ``work`` in a forked child; its exit code, or None if it hung and was killed."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            work()
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def test_anyio_portal_keeps_its_loop_thread_id() -> None:
    """A running portal holds its event-loop thread's id in _event_loop_thread_id."""
    with start_blocking_portal() as portal:
        loop_thread = portal.call(threading.get_ident)
        assert getattr(portal, "_event_loop_thread_id", MISSING) == loop_thread, ANYIO_REACH


def test_anyio_portal_without_a_loop_thread_id_refuses_calls() -> None:
    """A portal whose _event_loop_thread_id is None refuses calls with RuntimeError."""
    with start_blocking_portal() as portal:
        running = portal._event_loop_thread_id
        portal._event_loop_thread_id = None
        try:
            with pytest.raises(RuntimeError, match="not running"):
                portal.call(threading.get_ident)
        except pytest.fail.Exception as exc:
            raise AssertionError(f"{ANYIO_REACH}: {exc}") from None
        finally:
            portal._event_loop_thread_id = running


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_anyio_portal_marked_not_running_is_left_at_once_in_a_forked_child() -> None:
    """In a forked child, marking an inherited portal as not running lets its context exit."""
    portal_cm = start_blocking_portal()
    portal: BlockingPortal = portal_cm.__enter__()
    try:

        def leave_inherited_portal() -> None:
            portal._event_loop_thread_id = None  # what the fork handler does
            portal_cm.__exit__(None, None, None)

        code = _child_exit_code(leave_inherited_portal)
    finally:
        portal_cm.__exit__(None, None, None)
    assert code == 0, f"{ANYIO_REACH}; the child {'hung' if code is None else f'exited {code}'}"


def _main_thread() -> None:
    assert threading.current_thread() is threading.main_thread(), (
        "signal handlers can only be observed from the main thread"
    )


def test_uvicorn_server_still_captures_signals_by_default() -> None:
    """Plain uvicorn.Server.serve installs its handler for SIGINT through capture_signals."""
    _main_thread()
    assert callable(getattr(uvicorn.Server, "capture_signals", None)), UVICORN_REACH
    server = uvicorn.Server(uvicorn.Config(Emulator().app, lifespan="off", log_level="warning"))
    before = signal.getsignal(signal.SIGINT)
    with server.capture_signals():
        during = signal.getsignal(signal.SIGINT)
    assert during != before, (
        f"{UVICORN_REACH}; uvicorn no longer installs handlers there: the override may be "
        "obsolete, or signals are captured some other way"
    )
    assert signal.getsignal(signal.SIGINT) == before


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"], indirect=True)
async def test_served_emulator_leaves_sigint_to_the_host() -> None:
    """While the emulator is served on the main thread, the host's SIGINT handler stays."""
    _main_thread()
    before = signal.getsignal(signal.SIGINT)
    emulator = Emulator()
    try:
        async with emulator.serve(host="127.0.0.1", port=0) as url:
            during = signal.getsignal(signal.SIGINT)
            host, port = url.removeprefix("http://").rsplit(":", 1)
            socket.create_connection((host, int(port)), timeout=5).close()
    finally:
        emulator.close()
    assert during == before, f"{UVICORN_REACH}; SIGINT went to {during!r} while serving"
