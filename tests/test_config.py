"""Settings are validated when a client is built: ConfigurationError, naming the argument,
option or environment variable at fault, on both faces and in the pytest plugin."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

# See tests/test_plugin.py: pytester runs must not be the first to import httpcore.
import httpcore  # noqa: F401
import httpx
import pytest

from kubernaut_audit import (
    AsyncAuditClient,
    AuditClient,
    ConfigurationError,
    RetryPolicy,
)
from kubernaut_audit.testing import set_testing

pytest_plugins = ["pytester"]

URL = "http://ds.test"
ENV = "KUBERNAUT_AUDIT_FLUSH_INTERVAL"


def _build_async(**kwargs: Any) -> object:
    return AsyncAuditClient(**kwargs)


def _build_sync(**kwargs: Any) -> object:
    client = AuditClient(**kwargs)
    client.close()
    return client


@pytest.fixture(params=[_build_async, _build_sync], ids=["async", "sync"])
def build(request: pytest.FixtureRequest) -> Callable[..., object]:
    """Build a client of either face."""
    factory: Callable[..., object] = request.param
    return factory


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"flush_interval": -1}, "flush_interval"),
        ({"flush_interval": 0}, "flush_interval"),
        ({"flush_interval": math.nan}, "flush_interval"),
        ({"flush_interval": math.inf}, "flush_interval"),
        ({"flush_interval": True}, "flush_interval"),
        ({"flush_interval": "2"}, "flush_interval"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": math.inf}, "timeout"),
        ({"timeout": None}, "timeout"),
        ({"timeout": "10"}, "timeout"),
        ({"timeout": httpx.Timeout(5.0, read=-1.0)}, "timeout.read"),
        ({"timeout": httpx.Timeout(5.0, connect=math.nan)}, "timeout.connect"),
        ({"max_response_bytes": 0}, "max_response_bytes"),
        ({"max_response_bytes": -5}, "max_response_bytes"),
        ({"max_response_bytes": 1.5}, "max_response_bytes"),
        ({"max_response_bytes": True}, "max_response_bytes"),
        ({"token": "t", "token_file": "/run/token"}, "token_file"),
        ({"token": 42}, "token"),
        ({"user": b"alice"}, "user"),
        ({"headers": {"X-Team": 1}}, "headers"),
        ({"headers": [("X-Team", "a")]}, "headers"),
        ({"retry": {"attempts": 2}}, "retry"),
        ({"retry_hooks": [42]}, "retry_hooks"),
        ({"base_url": "ds.test:8080"}, "base_url"),
        ({"writer": "grid"}, "writer"),
        ({"writer": "Ticker"}, "writer"),
        ({"writer": 2}, "writer"),
    ],
)
def test_bad_argument_named(
    build: Callable[..., object], kwargs: dict[str, Any], named: str
) -> None:
    """A bad setting fails in the constructor as a ConfigurationError naming the argument."""
    options = dict(kwargs)
    with pytest.raises(ConfigurationError, match=named):
        build(base_url=options.pop("base_url", URL), **options)


@pytest.mark.parametrize("raw", ["abc", "-1", "0", "nan", "inf", "2s"])
def test_bad_flush_interval_variable_named(
    build: Callable[..., object], monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    """A bad KUBERNAUT_AUDIT_FLUSH_INTERVAL fails in the constructor, naming the variable."""
    monkeypatch.setenv(ENV, raw)
    with pytest.raises(ConfigurationError, match=ENV):
        build(base_url=URL)


def test_bad_url_variable_named(
    build: Callable[..., object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DATA_STORAGE_URL without a scheme fails, naming the variable."""
    monkeypatch.setenv("DATA_STORAGE_URL", "ds.test:8080")
    with pytest.raises(ConfigurationError, match="DATA_STORAGE_URL"):
        build()


def test_flush_interval_variable_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """A valid KUBERNAUT_AUDIT_FLUSH_INTERVAL is the client's flush interval."""
    monkeypatch.setenv(ENV, " 0.5 ")
    assert AsyncAuditClient(base_url=URL).flush_interval == 0.5


def test_argument_wins_over_a_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """flush_interval= given: the variable is not read, so a bad one does not matter."""
    monkeypatch.setenv(ENV, "abc")
    assert AsyncAuditClient(base_url=URL, flush_interval=1).flush_interval == 1.0


@pytest.mark.parametrize("raw", ["grid", "sincelastwrite", "1"])
def test_bad_writer_variable_named(
    build: Callable[..., object], monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    """A KUBERNAUT_AUDIT_WRITER naming no writer kind fails in the constructor, naming it."""
    monkeypatch.setenv("KUBERNAUT_AUDIT_WRITER", raw)
    with pytest.raises(ConfigurationError, match="KUBERNAUT_AUDIT_WRITER"):
        build(base_url=URL)


def test_writer_defaults_to_auto_then_variable_then_argument(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """writer: "auto" by default, KUBERNAUT_AUDIT_WRITER when set, the argument over both."""
    monkeypatch.delenv("KUBERNAUT_AUDIT_WRITER", raising=False)
    assert AsyncAuditClient(base_url=URL).writer == "auto"
    monkeypatch.setenv("KUBERNAUT_AUDIT_WRITER", " since-last-write ")
    assert AsyncAuditClient(base_url=URL).writer == "since-last-write"
    with AuditClient(base_url=URL, writer="ticker") as client:
        assert client.writer == "ticker"


def test_configuration_error_is_a_value_error() -> None:
    """ConfigurationError is a ValueError, for code that caught ValueError before."""
    with pytest.raises(ValueError, match="flush_interval"):
        AsyncAuditClient(base_url=URL, flush_interval=-1)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"attempts": 0}, "attempts"),
        ({"attempts": True}, "attempts"),
        ({"attempts": 2.5}, "attempts"),
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": -1.0}, "timeout"),
        ({"initial": math.inf}, "initial"),
        ({"max_backoff": -0.1}, "max_backoff"),
        ({"max_retry_after": math.nan}, "max_retry_after"),
    ],
)
def test_bad_retry_policy_named(kwargs: dict[str, Any], named: str) -> None:
    """A RetryPolicy refuses a bad field when built, naming it."""
    with pytest.raises(ConfigurationError, match=named):
        RetryPolicy(**kwargs)


def test_unbounded_retry_budget_allowed() -> None:
    """timeout=inf is a valid retry budget: no budget at all."""
    assert RetryPolicy(timeout=math.inf).timeout == math.inf


@pytest.mark.parametrize("attempts", [0, -1, True])
def test_bad_testing_attempts_named(attempts: Any) -> None:
    """set_testing refuses an attempt count that is not an int >= 1."""
    with pytest.raises(ConfigurationError, match="attempts"):
        set_testing(True, attempts=attempts)


# -- the pytest plugin -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ini", "option", "message"),
    [
        pytest.param(
            None,
            "--audit-flush-interval=nan",
            "*--audit-flush-interval must be a positive, finite*",
            id="flush-interval-option",
        ),
        pytest.param(
            "audit_flush_interval = two",
            None,
            "*ini audit_flush_interval='two' is not a number*",
            id="flush-interval-ini",
        ),
        pytest.param(
            None,
            "--audit-writer=grid",
            "*--audit-writer must be one of 'ticker', *got 'grid'*",
            id="writer-option",
        ),
        pytest.param(
            "audit_writer = hapi",
            None,
            "*ini audit_writer must be one of*got 'hapi'*",
            id="writer-ini",
        ),
    ],
)
def test_plugin_refuses_a_bad_setting_naming_where_it_came_from(
    pytester: pytest.Pytester, ini: str | None, option: str | None, message: str
) -> None:
    """A bad --audit-flush-interval / --audit-writer, or their ini keys, stop the run with a
    usage error naming the option or the ini key."""
    if ini is not None:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", *([option] if option else []))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_plugin_zero_option_is_refused_not_ignored(pytester: pytest.Pytester) -> None:
    """--audit-flush-interval=0 is an error, not a silent fall back to the default."""
    pytester.makepyfile("def test_nothing():\n    pass\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "--audit-flush-interval=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_plugin_writer_option_wins_over_ini_and_reaches_the_clients(
    pytester: pytest.Pytester,
) -> None:
    """--audit-writer beats ini audit_writer; both client fixtures assume it."""
    pytester.makeini("[pytest]\ndata_storage_url = http://ds.test\naudit_writer = ticker\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        def test_sync(audit_client):
            assert audit_client.writer == "since-last-write"

        @pytest.mark.anyio
        async def test_async(async_audit_client):
            assert async_audit_client.writer == "since-last-write"
        """
    )
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--audit-writer", "since-last-write", "-p", "anyio"
    )
    result.assert_outcomes(passed=2)
