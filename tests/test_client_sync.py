"""AuditClient: the same calls, blocking, over one event-loop thread per client."""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from kubernaut_audit import AuditClient, NotFoundError, RetryPolicy

EventFactory = Callable[..., dict[str, Any]]
BASE = "http://ds.test"


class Server:
    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = responses
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses[min(len(self.requests), len(self.responses)) - 1]

    def client(self) -> AuditClient:
        return AuditClient(
            base_url=BASE, transport=httpx.MockTransport(self), retry=RetryPolicy(initial=0.0)
        )


def page(events: list[dict[str, Any]], *, total: int | None = None) -> httpx.Response:
    total = len(events) if total is None else total
    return httpx.Response(200, json={"data": events, "pagination": {"total": total}})


def test_query_blocks_and_returns_page(stored_event: EventFactory) -> None:
    """query_audit_events returns a typed page, blocking."""
    server = Server(page([stored_event()]))
    with server.client() as client:
        result = client.query_audit_events(correlation_id="rr-1", limit=5)
    assert len(result) == 1
    assert server.requests[0].url.params["limit"] == "5"


def test_iter_walks_pages(stored_event: EventFactory) -> None:
    """iter_audit_events yields every event across pages, then checks the count."""
    events = [stored_event(event_timestamp=f"2025-01-02T03:04:0{i}Z") for i in range(3)]
    server = Server(page(events[:2], total=3), page(events[2:], total=3), page(events[:1], total=3))
    with server.client() as client:
        got = [str(e.event_id) for e in client.iter_audit_events(page_size=2)]
    assert got == [e["event_id"] for e in events]
    assert [r.url.params.get("offset", "0") for r in server.requests] == ["0", "2", "0"]


def test_list_returns_all(stored_event: EventFactory) -> None:
    """list_audit_events returns a list."""
    server = Server(page([stored_event(), stored_event()]))
    with server.client() as client:
        assert len(client.list_audit_events(correlation_id="rr-1")) == 2


def test_iter_validates_before_any_request() -> None:
    """An empty filter is refused when the iterator is created, before any request."""
    server = Server(page([]))
    with server.client() as client, pytest.raises(ValueError, match="correlation_id"):
        client.iter_audit_events(correlation_id="")
    assert server.requests == []


def test_create_event(request_event: EventFactory) -> None:
    """create_audit_event writes and reports stored."""
    server = Server(
        httpx.Response(
            201,
            json={
                "event_id": str(uuid.uuid4()),
                "event_timestamp": "2025-01-02T03:04:05Z",
                "message": "ok",
            },
        )
    )
    with server.client() as client:
        assert client.create_audit_event(request_event()).stored


def test_create_events_accepts_generator(request_event: EventFactory) -> None:
    """create_audit_events takes any iterable, a generator included."""
    ids = [str(uuid.uuid4()) for _ in range(3)]
    server = Server(httpx.Response(201, json={"event_ids": ids}))
    with server.client() as client:
        result = client.create_audit_events(request_event() for _ in range(3))
    assert [str(i) for i in result.event_ids] == ids
    assert len(json.loads(server.requests[0].content)) == 3


def test_ready() -> None:
    """ready() answers from /readyz."""
    with Server(httpx.Response(200, text='{"status":"ready"}')).client() as client:
        assert client.ready()


def test_errors_raised_in_caller_thread() -> None:
    """The typed error reaches the caller unchanged."""
    server = Server(httpx.Response(404, text="404 page not found"))
    with server.client() as client, pytest.raises(NotFoundError):
        client.query_audit_events()


def test_context_manager_closes() -> None:
    """Leaving the with block closes the client: later calls raise RuntimeError."""
    server = Server(page([]))
    with server.client() as client:
        client.query_audit_events()
    with pytest.raises(RuntimeError, match="closed"):
        client.query_audit_events()


def test_close_stops_event_loop_thread() -> None:
    """close() stops the client's event-loop thread."""
    before = set(threading.enumerate())
    client = Server(page([])).client()
    client.query_audit_events()
    assert set(threading.enumerate()) - before
    client.close()
    assert set(threading.enumerate()) - before == set()


def test_close_twice_is_harmless() -> None:
    """close() may be called more than once."""
    client = Server(page([])).client()
    client.close()
    client.close()


def test_repr_names_base_url() -> None:
    """The repr names the server, nothing secret."""
    with AuditClient(base_url=BASE, token="s3cret", transport=httpx.MockTransport(Server())) as c:
        assert repr(c) == f"AuditClient(base_url='{BASE}')"


@pytest.mark.usefixtures("ctrl_c_interrupts")
def test_ctrl_c_while_a_wait_is_handed_to_the_portal_cancels_it() -> None:
    """A Ctrl-C that lands while a blocking wait is still being handed to the portal's loop (busy
    with another call) cancels that wait too: it never polls on."""
    assert threading.current_thread() is threading.main_thread()
    queries: list[str | None] = []
    loop_busy = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        cid = request.url.params.get("correlation_id")
        queries.append(cid)
        if cid == "busy":
            loop_busy.set()
            time.sleep(2.0)  # runs on the portal's loop: nothing can be handed to it meanwhile
        return page([])

    client = AuditClient(base_url=BASE, transport=httpx.MockTransport(handler))
    busy = threading.Thread(target=client.list_audit_events, kwargs={"correlation_id": "busy"})
    main_thread = threading.get_ident()
    timer = threading.Timer(0.3, signal.pthread_kill, args=(main_thread, signal.SIGINT))
    try:
        busy.start()
        assert loop_busy.wait(10)
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            client.wait_for_audit_events("ctrl-c", timeout=30)
        busy.join(10)
        seen = queries.count("ctrl-c")
        time.sleep(0.6)  # a live wait polls about every 0.15 s
        assert queries.count("ctrl-c") == seen <= 1
    finally:
        timer.cancel()
        client.close()
