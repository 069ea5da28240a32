"""A failed audit assertion reads like a failed ``assert``: under pytest's default ``--tb=auto``
the failure shows the user's line and the diagnostic, and no frame of kubernaut_audit, anyio, the
portal's thread, concurrent.futures or tenacity; ``--full-trace`` still shows them all.

One generated suite of failing tests (each face; asyncio and trio; a wait, an absence check, a
404 inside a wait, ``audit.expect``/``expect_none``, expectation sets) runs twice in a
subprocess against the embedded emulator: once by default, once with ``--full-trace``. Each
test below reads one failure section of those runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kubernaut_audit import ServerError
from kubernaut_audit._tracebacks import cut_plumbing, hide_audit_errors, keep_plumbing

pytestmark = pytest.mark.xdist_group("tracebacks")

#: The longest failure section allowed (header to next header, the plugin's report included).
MAX_LINES = 25

SUITE = """
import pytest

from kubernaut_audit import AsyncAuditClient, AuditClient, wait_for_audit_events
from kubernaut_audit.emulator import make_event


def test_sync_helper_wait(audit):
    audit.wait(event_type="gateway.signal.received", timeout=0.5)


def test_sync_helper_assert_none(audit, audit_client):
    audit_client.create_audit_event(make_event(audit.correlation_id, "x.y"))
    audit.assert_none(during=0.2)


def test_sync_function_wait(audit_client, correlation_id):
    wait_for_audit_events(audit_client, correlation_id, timeout=0.5)


def test_sync_not_found(audit_client):
    with AuditClient(base_url=audit_client.base_url + "/nope") as client:
        client.wait_for_audit_events("rr-1", timeout=0.5)


def test_sync_helper_expect(audit):
    audit.expect(event_type="gateway.signal.received", timeout=0.5)


def test_sync_helper_expect_none(audit, audit_client):
    audit_client.create_audit_event(make_event(audit.correlation_id, "x.y"))
    audit.expect_none(during=0.2)


def test_sync_expectation_set(audit_client, correlation_id):
    checks = audit_client.expectations(correlation_id)
    checks.expect(event_type="a.b", timeout=0.5)
    checks.verify()


@pytest.mark.anyio
async def test_async_expectation_set(async_audit_client, correlation_id):
    checks = async_audit_client.expectations(correlation_id)
    checks.expect(event_type="a.b", timeout=0.5)
    await checks.verify()


@pytest.mark.anyio
async def test_async_wait(async_audit_client, correlation_id):
    await wait_for_audit_events(async_audit_client, correlation_id, timeout=0.5)


@pytest.mark.anyio
async def test_async_assert_none(async_audit_client, correlation_id):
    await async_audit_client.create_audit_event(make_event(correlation_id, "x.y"))
    await async_audit_client.assert_no_audit_events(correlation_id, during=0.2)


@pytest.mark.anyio
async def test_async_not_found(async_audit_client):
    async with AsyncAuditClient(base_url=async_audit_client.base_url + "/nope") as client:
        await wait_for_audit_events(client, "rr-1", timeout=0.5)
"""

CONFTEST = """
import pytest

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param
"""

#: Test id -> (the user's failing line, a line of the diagnostic).
CASES = {
    "test_sync_helper_wait": (
        'audit.wait(event_type="gateway.signal.received", timeout=0.5)',
        "expected: at least 1 event(s) with event_type='gateway.signal.received'",
    ),
    "test_sync_helper_assert_none": (
        "audit.assert_none(during=0.2)",
        "audit events arrived where none were expected",
    ),
    "test_sync_function_wait": (
        "wait_for_audit_events(audit_client, correlation_id, timeout=0.5)",
        "expected: at least 1 event(s)",
    ),
    "test_sync_not_found": (
        'client.wait_for_audit_events("rr-1", timeout=0.5)',
        "NotFoundError: Data Storage answered 404",
    ),
    "test_sync_helper_expect": (
        'audit.expect(event_type="gateway.signal.received", timeout=0.5)',
        "expected: at least 1 event(s) with event_type='gateway.signal.received'",
    ),
    "test_sync_helper_expect_none": (
        "audit.expect_none(during=0.2)",
        "audit events arrived where none were expected",
    ),
    "test_sync_expectation_set": ("checks.verify()", "expected: at least 1 event(s)"),
    **{
        f"test_async_{name}[{backend}]": (line, diagnostic)
        for backend in ("asyncio", "trio")
        for name, line, diagnostic in (
            (
                "wait",
                "await wait_for_audit_events(async_audit_client, correlation_id, timeout=0.5)",
                "expected: at least 1 event(s)",
            ),
            (
                "assert_none",
                "await async_audit_client.assert_no_audit_events(correlation_id, during=0.2)",
                "audit events arrived where none were expected",
            ),
            (
                "not_found",
                'await wait_for_audit_events(client, "rr-1", timeout=0.5)',
                "NotFoundError: Data Storage answered 404",
            ),
            ("expectation_set", "await checks.verify()", "expected: at least 1 event(s)"),
        )
    },
}

#: Frames no default failure may show: file paths of the SDK and of what it runs on.
INTERNAL = re.compile(
    r"kubernaut_audit/|anyio/|concurrent/futures|tenacity/|trio/|asyncio/|from_thread"
)
_HEADER = re.compile(r"^_{3,} (\S.*?) _{3,}$")


def _sections(output: str) -> dict[str, list[str]]:
    """The failure sections of a pytest run, by test id."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        header = _HEADER.match(line)
        if header:
            current = sections.setdefault(header.group(1), [line])
        elif line.startswith("====="):
            current = None
        elif current is not None:
            current.append(line)
    return sections


def _run(directory: Path, *options: str) -> dict[str, list[str]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATA_STORAGE_", "KUBERNAUT_AUDIT_", "PYTEST_"))
    }
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--audit-emulator", *options],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    return _sections(result.stdout)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("failing-suite")
    (directory / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (directory / "test_failing.py").write_text(textwrap.dedent(SUITE))
    return directory


@pytest.fixture(scope="module")
def default_run(suite: Path) -> dict[str, list[str]]:
    """The failure sections under pytest's defaults."""
    return _run(suite)


@pytest.fixture(scope="module")
def full_trace_run(suite: Path) -> dict[str, list[str]]:
    """The failure sections with --full-trace."""
    return _run(suite, "--full-trace")


def test_every_case_failed(default_run: dict[str, list[str]]) -> None:
    """The generated suite failed once per case, and nothing else failed."""
    assert sorted(default_run) == sorted(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_failure_is_short(default_run: dict[str, list[str]], case: str) -> None:
    """A failure section is at most 25 lines, the plugin's report included."""
    section = default_run[case]
    assert len(section) <= MAX_LINES, "\n".join(section)


@pytest.mark.parametrize("case", sorted(CASES))
def test_failure_points_at_the_users_line(default_run: dict[str, list[str]], case: str) -> None:
    """The failing line shown (marked '>') is the user's call."""
    line, _ = CASES[case]
    marked = [text for text in default_run[case] if text.startswith(">")]
    assert len(marked) == 1, "\n".join(default_run[case])
    assert marked[0][1:].strip() == line


@pytest.mark.parametrize("case", sorted(CASES))
def test_failure_shows_the_diagnostic(default_run: dict[str, list[str]], case: str) -> None:
    """The error and its diagnostic follow the user's line."""
    _, diagnostic = CASES[case]
    assert diagnostic in "\n".join(default_run[case])


@pytest.mark.parametrize("case", sorted(CASES))
def test_failure_hides_internal_frames(default_run: dict[str, list[str]], case: str) -> None:
    """No frame of the SDK, anyio, trio, asyncio, the portal or tenacity is shown."""
    leaked = [text for text in default_run[case] if INTERNAL.search(text)]
    assert not leaked, "\n".join(default_run[case])


@pytest.mark.parametrize("case", sorted(CASES))
def test_full_trace_shows_the_sdk_frames(full_trace_run: dict[str, list[str]], case: str) -> None:
    """--full-trace shows the SDK's own frames, nothing being lost for debugging."""
    text = "\n".join(full_trace_run[case])
    assert re.search(r"kubernaut_audit/\w+\.py", text)


#: Blocking-face failures raised on the portal's loop (declared checks come back as verdicts,
#: and raise in the caller's thread: they never cross the portal).
PORTAL_CASES = [c for c in sorted(CASES) if c.startswith("test_sync") and "expect" not in c]


@pytest.mark.parametrize("case", PORTAL_CASES)
def test_full_trace_shows_the_portal_hop(full_trace_run: dict[str, list[str]], case: str) -> None:
    """--full-trace on the blocking face shows the portal's thread and future too."""
    text = "\n".join(full_trace_run[case])
    assert "anyio/from_thread.py" in text
    assert "concurrent/futures" in text


@pytest.mark.parametrize("case", [c for c in sorted(CASES) if "not_found" in c])
def test_full_trace_shows_the_retry_loop(full_trace_run: dict[str, list[str]], case: str) -> None:
    """--full-trace of an error inside a wait shows tenacity's retry loop too."""
    assert "tenacity/" in "\n".join(full_trace_run[case])


# -- the tools, on their own -----------------------------------------------------------------


def _frames(exc: BaseException) -> list[str]:
    names: list[str] = []
    tb = exc.__traceback__
    while tb is not None:
        names.append(f"{tb.tb_frame.f_globals['__name__']}:{tb.tb_frame.f_code.co_name}")
        tb = tb.tb_next
    return names


def _raised_through_a_foreign_frame(error: BaseException) -> BaseException:
    """``error`` raised by an SDK-named frame, through a frame of another module, caught and
    re-raised with cut_plumbing by a third frame; returns it as caught by the caller."""
    sdk: dict[str, object] = {"__name__": "kubernaut_audit._fake", "error": error}
    exec("def deepest():\n    raise error\n", sdk)
    other: dict[str, object] = {"__name__": "tenacity._fake", "deepest": sdk["deepest"]}
    exec("def middle():\n    deepest()\n", other)
    middle = other["middle"]
    assert callable(middle)
    try:
        try:
            middle()
        except BaseException as exc:
            raise cut_plumbing(exc)  # noqa: B904
    except BaseException as caught:
        return caught
    raise AssertionError("nothing raised")


def test_cut_plumbing_keeps_only_the_sdks_frames() -> None:
    """An AuditError keeps the re-raising frame and the SDK's frames, not the foreign ones."""
    caught = _raised_through_a_foreign_frame(ServerError("x", status_code=503))
    assert _frames(caught) == [
        f"{__name__}:_raised_through_a_foreign_frame",
        "kubernaut_audit._fake:deepest",
    ]


def test_cut_plumbing_leaves_other_errors_whole() -> None:
    """A bug (not an AuditError) keeps every frame, once each."""
    caught = _raised_through_a_foreign_frame(KeyError("x"))
    assert _frames(caught) == [
        f"{__name__}:_raised_through_a_foreign_frame",
        "tenacity._fake:middle",
        "kubernaut_audit._fake:deepest",
    ]


def test_keep_plumbing_keeps_every_frame() -> None:
    """With keep_plumbing on (--full-trace), an AuditError keeps the foreign frames too."""
    previous = keep_plumbing(True)
    try:
        caught = _raised_through_a_foreign_frame(ServerError("x", status_code=503))
    finally:
        keep_plumbing(previous)
    assert "tenacity._fake:middle" in _frames(caught)


@pytest.mark.parametrize(
    ("error", "hidden"),
    [(ServerError("x", status_code=500), True), (ValueError("x"), False), (None, False)],
)
def test_hide_only_audit_errors(error: BaseException | None, hidden: bool) -> None:
    """The __tracebackhide__ hook hides the SDK's frames for an AuditError only."""
    info: pytest.ExceptionInfo[BaseException] | None = None
    if error is not None:
        with pytest.raises(type(error)) as info:
            _raise(error)
    assert hide_audit_errors(info) is hidden


def _raise(error: BaseException) -> None:
    raise error
