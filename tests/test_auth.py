"""Bearer tokens: static or from a rotating file; re-read rules; never leaked."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import httpx
import pytest

from kubernaut_audit import (
    AsyncAuditClient,
    AuditError,
    AuthenticationError,
    RetryPolicy,
)
from kubernaut_audit._auth import Secret, TokenSource

BASE = "http://ds.test"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.s3cr3t-token-value"
OK = httpx.Response(200, json={"data": [], "pagination": {"total": 0}})


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write_token(path: Path, text: str, stamp: int) -> None:
    # Set the mtime explicitly: a rotation within one filesystem tick must still be seen.
    path.write_text(text)
    os.utime(path, ns=(stamp, stamp))


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    write_token(path, "token-one\n", 1_000_000_000)
    return path


# -- TokenSource -----------------------------------------------------------------------------


def test_static_token() -> None:
    """A static token is returned as given, stripped."""
    source = TokenSource(token=" abc ")
    secret = source.get()
    assert secret is not None
    assert secret.reveal() == "abc"


def test_no_token() -> None:
    """Without token or file there is nothing to send."""
    assert TokenSource().get() is None


def test_token_and_file_together_refused(token_file: Path) -> None:
    """Passing both a token and a token file is refused."""
    with pytest.raises(ValueError, match="either"):
        TokenSource(token="a", token_file=token_file)


def test_file_read_at_start(token_file: Path) -> None:
    """The file is read at construction, whitespace stripped."""
    secret = TokenSource(token_file=token_file).get()
    assert secret is not None
    assert secret.reveal() == "token-one"


def test_rotation_not_seen_before_interval(token_file: Path) -> None:
    """A rotated file is not re-read before the interval passes."""
    clock = FakeClock()
    source = TokenSource(token_file=token_file, clock=clock)
    write_token(token_file, "token-two", 2_000_000_000)
    clock.now += 59.0
    secret = source.get()
    assert secret is not None
    assert secret.reveal() == "token-one"


def test_rotation_seen_after_interval(token_file: Path) -> None:
    """A rotated file is picked up once 60 s have passed since the last check."""
    clock = FakeClock()
    source = TokenSource(token_file=token_file, clock=clock)
    write_token(token_file, "token-two", 2_000_000_000)
    clock.now += 60.0
    secret = source.get()
    assert secret is not None
    assert secret.reveal() == "token-two"


def test_missing_file_keeps_last_token(token_file: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A token file that disappears keeps the last good token (and logs a warning)."""
    clock = FakeClock()
    source = TokenSource(token_file=token_file, clock=clock)
    token_file.unlink()
    clock.now += 120.0
    with caplog.at_level(logging.WARNING, logger="kubernaut_audit"):
        secret = source.get()
    assert secret is not None
    assert secret.reveal() == "token-one"
    assert "unreadable" in caplog.text


def test_empty_file_keeps_last_token(token_file: Path) -> None:
    """A token file emptied mid-rotation keeps the last good token."""
    clock = FakeClock()
    source = TokenSource(token_file=token_file, clock=clock)
    write_token(token_file, "  \n", 2_000_000_000)
    clock.now += 120.0
    secret = source.get()
    assert secret is not None
    assert secret.reveal() == "token-one"


def test_refresh_after_unauthorized_reports_change(token_file: Path) -> None:
    """After a 401 the file is re-read at once; True only when the token changed."""
    source = TokenSource(token_file=token_file, clock=FakeClock())
    assert source.refresh_after_unauthorized() is False
    write_token(token_file, "token-two", 2_000_000_000)
    assert source.refresh_after_unauthorized() is True


def test_refresh_after_unauthorized_static_is_false() -> None:
    """A static token cannot be refreshed."""
    assert TokenSource(token="abc").refresh_after_unauthorized() is False


def test_secret_hidden_in_str_and_repr() -> None:
    """A Secret shows neither its value in str nor in repr."""
    secret = Secret(TOKEN)
    assert TOKEN not in str(secret)
    assert TOKEN not in repr(secret)


# -- through the client ----------------------------------------------------------------------


class Recorder:
    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = responses
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses[min(len(self.requests), len(self.responses)) - 1]

    def auth(self, index: int) -> str | None:
        value: str | None = self.requests[index].headers.get("authorization")
        return value


def client(server: Recorder | httpx.MockTransport, **kwargs: object) -> AsyncAuditClient:
    transport = server if isinstance(server, httpx.MockTransport) else httpx.MockTransport(server)
    kwargs.setdefault("retry", RetryPolicy(initial=0.0))
    return AsyncAuditClient(base_url=BASE, transport=transport, **kwargs)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_static_token_sent_as_bearer() -> None:
    """token= is sent as Authorization: Bearer."""
    server = Recorder(OK)
    async with client(server, token=TOKEN) as c:
        await c.query_audit_events()
    assert server.auth(0) == f"Bearer {TOKEN}"


@pytest.mark.anyio
async def test_no_token_no_authorization_header() -> None:
    """Without a token no Authorization header is sent."""
    server = Recorder(OK)
    async with client(server) as c:
        await c.query_audit_events()
    assert server.auth(0) is None


@pytest.mark.anyio
async def test_token_file_sent_as_bearer(token_file: Path) -> None:
    """token_file= is read and sent as Authorization: Bearer."""
    server = Recorder(OK)
    async with client(server, token_file=token_file) as c:
        await c.query_audit_events()
    assert server.auth(0) == "Bearer token-one"


@pytest.mark.anyio
async def test_401_after_rotation_retries_once_with_new_token(token_file: Path) -> None:
    """A 401 re-reads the rotated file and retries once with the new token."""
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if request.headers["authorization"] == "Bearer token-one":
            write_token(token_file, "token-two", 2_000_000_000)  # rotated under us
            return httpx.Response(401, text="expired")
        return OK

    async with client(httpx.MockTransport(handler), token_file=token_file) as c:
        await c.query_audit_events()
    assert [r.headers["authorization"] for r in requests] == [
        "Bearer token-one",
        "Bearer token-two",
    ]


@pytest.mark.anyio
async def test_repeated_401_raises_after_one_refresh(token_file: Path) -> None:
    """A 401 again after the refresh raises AuthenticationError: no loop."""
    stamp = 2_000_000_000
    count = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal count, stamp
        count += 1
        stamp += 1_000_000_000
        write_token(token_file, f"token-{count + 1}", stamp)  # rotates every time
        return httpx.Response(401, text="nope")

    async with client(httpx.MockTransport(handler), token_file=token_file) as c:
        with pytest.raises(AuthenticationError):
            await c.query_audit_events()
    assert count == 2


@pytest.mark.anyio
async def test_401_with_unchanged_file_not_retried(token_file: Path) -> None:
    """A 401 when the file holds the same token is raised at once."""
    server = Recorder(httpx.Response(401, text="nope"), OK)
    async with client(server, token_file=token_file) as c:
        with pytest.raises(AuthenticationError):
            await c.query_audit_events()
    assert len(server.requests) == 1


def _assert_no_token(exc: BaseException) -> None:
    assert TOKEN not in str(exc)
    assert TOKEN not in repr(exc)
    assert TOKEN.encode() not in pickle.dumps(exc)
    assert TOKEN not in repr(vars(exc))


@pytest.mark.anyio
@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(401, text="token expired"),
        httpx.Response(
            403,
            json={"type": "about:blank", "title": "Forbidden", "status": 403},
            headers={"content-type": "application/problem+json"},
        ),
        httpx.Response(502, text="<html>bad gateway</html>"),
        httpx.Response(200, text="<html>login</html>", headers={"content-type": "text/html"}),
    ],
    ids=["401", "403-problem", "502-html", "200-html"],
)
async def test_token_absent_from_exceptions(response: httpx.Response) -> None:
    """The token is in no exception's str, repr, attributes or pickle."""
    async with client(Recorder(response), token=TOKEN, retry=RetryPolicy(attempts=1)) as c:
        with pytest.raises(AuditError) as info:
            await c.query_audit_events()
    _assert_no_token(info.value)


@pytest.mark.anyio
async def test_token_absent_from_connection_errors() -> None:
    """A transport error (whose httpx cause holds the request) does not show the token."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with client(httpx.MockTransport(refuse), token=TOKEN) as c:
        with pytest.raises(AuditError) as info:
            await c.query_audit_events()
    _assert_no_token(info.value)
    assert TOKEN.encode() not in pickle.dumps(pickle.loads(pickle.dumps(info.value)))


@pytest.mark.anyio
async def test_token_absent_from_debug_logs(caplog: pytest.LogCaptureFixture) -> None:
    """No log line at DEBUG (ours or httpx's) carries the token, even across retries."""
    server = Recorder(httpx.Response(503, text="busy"), httpx.Response(401, text="no"))
    with caplog.at_level(logging.DEBUG):
        async with client(server, token=TOKEN) as c:
            with pytest.raises(AuthenticationError):
                await c.query_audit_events()
    assert caplog.records
    for record in caplog.records:
        assert TOKEN not in record.getMessage()
        assert TOKEN not in repr(vars(record))


@pytest.mark.anyio
async def test_redirect_to_other_host_drops_authorization() -> None:
    """A redirect to another host does not carry the Authorization header there."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "ds.test":
            return httpx.Response(
                307, headers={"location": "http://elsewhere.test/api/v1/audit/events?limit=100"}
            )
        return OK

    async with client(httpx.MockTransport(handler), token=TOKEN) as c:
        await c.query_audit_events()
    assert [r.url.host for r in seen] == ["ds.test", "elsewhere.test"]
    assert seen[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert "authorization" not in seen[1].headers
