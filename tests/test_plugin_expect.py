"""Declared checks in the pytest plugin (``audit.expect``), in the default mode and in windowed
mode (``--audit-window``), exercised on generated suites with pytester (in-process)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

# httpx maps httpcore's exceptions through a table it fills on first use; see test_plugin.py.
import httpcore  # noqa: F401
import pytest

pytest_plugins = ["pytester"]

_CONFTEST = """
import pytest
from kubernaut_audit.emulator import make_event

def emit(client, cid, *types):
    client.create_audit_events([make_event(cid, t) for t in types])

failures_seen = []

def pytest_audit_failure(item, failures):
    failures_seen.append((item.name, [type(f).__name__ for f in failures]))
"""

#: A flush interval that keeps absence and settle windows short (0.35 s).
FAST = ("--audit-emulator", "--audit-flush-interval", "0.1", "-p", "no:cacheprovider")


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(_CONFTEST)
    return pytester


def _outcomes(result: pytest.RunResult) -> list[tuple[str, str]]:
    """(test, outcome) per -v result line, in the order reported."""
    pattern = re.compile(r"^(\S+::\S+) (PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS)\b")
    return [m.groups() for line in result.outlines if (m := pattern.match(line))]  # type: ignore[misc]


def test_a_met_expectation_passes(suite: pytest.Pytester) -> None:
    """expect and expect_none declared in the body pass once the events are stored."""
    suite.makepyfile(
        """
        from conftest import emit
        def test_x(audit, audit_client):
            emit(audit_client, audit.correlation_id, "a.b.c")
            audit.expect(event_type="a.b.c", count=1, settle=True)
            audit.expect_none(event_type="x.y.z")
        """
    )
    suite.runpytest(*FAST).assert_outcomes(passed=1)


def test_expect_returns_before_anything_is_polled(suite: pytest.Pytester) -> None:
    """Declaring returns at once: the check is verified after the body, not at the call."""
    suite.makepyfile(
        """
        from conftest import emit
        def test_x(audit, audit_client):
            audit.expect(event_type="a.b.c")
            assert audit.polls == []
            emit(audit_client, audit.correlation_id, "a.b.c")
        """
    )
    suite.runpytest(*FAST).assert_outcomes(passed=1)


def test_a_failed_check_is_a_failure_at_the_declaring_line(suite: pytest.Pytester) -> None:
    """The test FAILs (not ERROR), pointing at the expect line, with diagnostic and section."""
    suite.makepyfile(
        """
        from conftest import emit
        def test_x(audit, audit_client):
            emit(audit_client, audit.correlation_id, "gateway.crd.failed")
            audit.expect(event_type="gateway.signal.received")
            audit.expect_none(event_type="gateway.crd.failed")
            x = 1
        """
    )
    result = suite.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert '>       audit.expect_none(event_type="gateway.crd.failed")' in out
    assert "UnexpectedAuditEvents: " in out
    assert "expected: no event with event_type='gateway.crd.failed'" in out
    assert "declared: test_a_failed_check_is_a_failure_at_the_declaring_line.py:5" in out
    assert re.search(r"-+ kubernaut-audit -+\ncorrelation_id: ", out)
    assert "x = 1" not in out


def test_the_failure_hook_hears_of_each_failed_test_once(suite: pytest.Pytester) -> None:
    """pytest_audit_failure(item, failures) is called once per failing test, with its checks'
    exceptions."""
    suite.makepyfile(
        """
        import conftest
        from conftest import emit
        def test_bad(audit, audit_client):
            emit(audit_client, audit.correlation_id, "a.b.c", "a.b.c")
            audit.expect(event_type="a.b.c", count=1)
        def test_good(audit):
            audit.expect_none()
        def test_zz_check():
            assert conftest.failures_seen == [("test_bad", ["UnexpectedAuditEvents"])]
        """
    )
    suite.runpytest(*FAST).assert_outcomes(failed=1, passed=2)


def test_a_failing_body_discards_its_checks(suite: pytest.Pytester) -> None:
    """When the body fails, its own error is reported and the checks are not waited for."""
    suite.makepyfile(
        """
        def test_x(audit):
            audit.expect(event_type="never", timeout=600)
            assert False, "the body failed"
        """
    )
    result = suite.runpytest(*FAST, "--durations=1")
    result.assert_outcomes(failed=1)
    assert "the body failed" in result.stdout.str()
    assert "AuditWaitTimeout" not in result.stdout.str()


def test_a_skipped_body_is_not_verified(suite: pytest.Pytester) -> None:
    """pytest.skip in the body skips the test; its checks are dropped."""
    suite.makepyfile(
        """
        import pytest
        def test_x(audit):
            audit.expect(event_type="never", timeout=600)
            pytest.skip("not today")
        """
    )
    suite.runpytest(*FAST).assert_outcomes(skipped=1)


def test_marker_settings_apply_to_declared_checks(suite: pytest.Pytester) -> None:
    """@pytest.mark.audit(timeout=...) bounds an expect as it bounds a wait."""
    suite.makepyfile(
        """
        import pytest
        @pytest.mark.audit(timeout=0.3)
        def test_x(audit):
            audit.expect(event_type="never")
        """
    )
    result = suite.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    assert re.search(r"timed out waiting for audit events .* after 0\.[23]\d", result.stdout.str())


def test_bad_arguments_fail_at_the_declaring_line(suite: pytest.Pytester) -> None:
    """An invalid expect raises where it is written, before anything is polled."""
    suite.makepyfile(
        """
        def test_x(audit):
            audit.expect(count=-1)
        """
    )
    result = suite.runpytest(*FAST)
    result.assert_outcomes(failed=1)
    assert "ValueError: count must be an int >= 0, got -1" in result.stdout.str()


def test_verify_checks_early(suite: pytest.Pytester) -> None:
    """audit.verify() verifies what was declared so far, blocking, in the body."""
    suite.makepyfile(
        """
        import pytest, kubernaut_audit
        def test_x(audit):
            audit.expect(event_type="never", timeout=0.2)
            with pytest.raises(kubernaut_audit.AuditWaitTimeout):
                audit.verify()
        """
    )
    suite.runpytest(*FAST).assert_outcomes(passed=1)


@pytest.mark.parametrize("window", ["0", "8"])
def test_an_xfail_test_whose_check_fails_is_xfailed(suite: pytest.Pytester, window: str) -> None:
    """A failed check counts as the failure an xfail marker expects, in both modes."""
    suite.makepyfile(
        """
        import pytest
        @pytest.mark.xfail(strict=True)
        def test_x(audit):
            audit.expect(event_type="never", timeout=0.2)
        """
    )
    suite.runpytest(*FAST, "--audit-window", window).assert_outcomes(xfailed=1)


_MIXED = """
import pytest
from conftest import emit

@pytest.mark.parametrize("n", range(3))
def test_ok(audit, audit_client, n):
    emit(audit_client, audit.correlation_id, "a.b.c")
    audit.expect(event_type="a.b.c", count=1, settle=True)
    audit.expect_none(event_type="x.y.z")

def test_missing(audit):
    audit.expect(event_type="never", timeout=0.3)

def test_plain():
    print("output of test_plain")

def test_unexpected(audit, audit_client):
    emit(audit_client, audit.correlation_id, "x.y.z")
    audit.expect_none(event_type="x.y.z")

def test_assert(audit):
    audit.expect_none()
    assert 1 == 2

@pytest.mark.skip(reason="not today")
def test_skipped(audit):
    pass
"""


def _normalized(text: str) -> str:
    """Without what differs from run to run: ids, durations, poll counts."""
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", text)
    text = re.sub(r"-[0-9a-f]{12}\b", "-<cid>", text)
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", text)
    text = re.sub(r"\d+\.\d+s\b", "<t>s", text)
    return re.sub(r"\(\d+ polls", "(<n> polls", text)


def _junit_cases(path: Path) -> list[tuple[str | None, str | None, list[tuple[str, str]]]]:
    cases = []
    for case in ET.parse(path).getroot().iter("testcase"):
        kids = [(child.tag, _normalized(child.get("message") or "")) for child in case]
        cases.append((case.get("classname"), case.get("name"), kids))
    return cases


def test_windowed_mode_reports_as_the_default_mode(suite: pytest.Pytester) -> None:
    """-v lines, their order, the short summary and the JUnit test cases are the same."""
    suite.makepyfile(test_mixed=_MIXED)
    default = suite.runpytest(*FAST, "-v", "-rA", "--junitxml=default.xml")
    windowed = suite.runpytest(
        *FAST, "-v", "-rA", "--audit-window", "64", "--junitxml=windowed.xml"
    )
    default.assert_outcomes(passed=4, failed=3, skipped=1)
    windowed.assert_outcomes(passed=4, failed=3, skipped=1)
    assert _outcomes(windowed) == _outcomes(default)

    def summary(result: pytest.RunResult) -> list[str]:
        start = result.outlines.index(
            next(line for line in result.outlines if "short test summary info" in line)
        )
        return [_normalized(line) for line in result.outlines[start:-1]]

    assert summary(windowed) == summary(default)
    assert "output of test_plain" in windowed.stdout.str()
    assert _junit_cases(suite.path / "windowed.xml") == _junit_cases(suite.path / "default.xml")


def test_windowed_mode_keeps_the_failure_rendering(suite: pytest.Pytester) -> None:
    """A check failing in windowed mode shows the declaring line, diagnostic and section."""
    suite.makepyfile(
        """
        from conftest import emit
        def test_x(audit, audit_client):
            emit(audit_client, audit.correlation_id, "a.b.c", "a.b.c")
            audit.expect(event_type="a.b.c", count=1)
        """
    )
    result = suite.runpytest(*FAST, "--audit-window", "4")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert '>       audit.expect(event_type="a.b.c", count=1)' in out
    assert "expected exactly 1 matching event(s), 2 arrived" in out
    assert re.search(r"-+ kubernaut-audit -+\ncorrelation_id: ", out)


def test_the_window_bounds_the_tests_with_pending_checks(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With K=1, a test's verdict is reported before the test two places later runs; with a
    wide window it is still pending then."""
    suite.makeconftest(
        _CONFTEST
        + """
reported = []
def pytest_runtest_logreport(report):
    if report.when == "call":
        reported.append(report.nodeid.rsplit("::", 1)[1])
"""
    )
    suite.makepyfile(
        """
        import os
        import conftest
        def test_1(audit):
            audit.expect_none(during=0.5)
        def test_2(audit):
            audit.expect_none(during=0.5)
        def test_3():
            assert ("test_1" in conftest.reported) == (os.environ["K"] == "1")
        """
    )
    for k in ("1", "8"):
        monkeypatch.setenv("K", k)
        suite.runpytest(*FAST, "--audit-window", k).assert_outcomes(passed=3)


def test_the_failure_hook_hears_before_the_report_in_windowed_mode(
    suite: pytest.Pytester,
) -> None:
    """pytest_audit_failure is called once per failing test, before its report is emitted."""
    suite.makeconftest(
        _CONFTEST
        + """
import json
order = []
def pytest_runtest_logreport(report):
    if report.when == "call":
        order.append(["report", report.nodeid.rsplit("::", 1)[1], report.outcome])
def pytest_audit_failure(item, failures):
    order.append(["hook", item.name, [type(f).__name__ for f in failures]])
def pytest_sessionfinish(session):
    with open("order.json", "w") as f:
        json.dump(order, f)
"""
    )
    suite.makepyfile(
        """
        def test_1(audit):
            audit.expect(event_type="never", timeout=0.2)
        def test_2():
            pass
        """
    )
    suite.runpytest(*FAST, "--audit-window", "8").assert_outcomes(failed=1, passed=1)
    assert json.loads((suite.path / "order.json").read_text()) == [
        ["hook", "test_1", ["AuditWaitTimeout"]],
        ["report", "test_1", "failed"],
        ["report", "test_2", "passed"],
    ]


def test_checks_resolve_before_a_module_fixture_they_use_is_torn_down(
    suite: pytest.Pytester,
) -> None:
    """A module-scoped fixture is finalized only after the pending checks of the module's
    tests that use it resolved: here its teardown writes events those checks rule out."""
    suite.makepyfile(
        """
        import pytest
        from conftest import emit

        @pytest.fixture(scope="module")
        def service(audit_client):
            ids = []
            yield ids
            for cid in ids:
                emit(audit_client, cid, "service.stopped")

        @pytest.mark.parametrize("n", range(3))
        def test_x(audit, service, n):
            service.append(audit.correlation_id)
            audit.expect_none(event_type="service.stopped", during=0.5)

        def test_other_module_test_runs_after(audit):
            pass
        """
    )
    suite.makepyfile(test_z="def test_z():\n    pass\n")
    suite.runpytest(*FAST, "--audit-window", "8").assert_outcomes(passed=5)


def test_function_fixtures_are_torn_down_before_windowed_checks_resolve(
    suite: pytest.Pytester,
) -> None:
    """The documented difference: a test's own fixtures end before its checks resolve, so
    events its teardown writes are seen by its checks in windowed mode only."""
    suite.makepyfile(
        """
        import pytest
        from conftest import emit

        @pytest.fixture
        def resource(audit, audit_client):
            yield
            emit(audit_client, audit.correlation_id, "resource.deleted")

        def test_x(audit, resource):
            audit.expect_none(event_type="resource.deleted", during=0.5)

        def test_next():
            pass
        """
    )
    suite.runpytest(*FAST).assert_outcomes(passed=2)
    suite.runpytest(*FAST, "--audit-window", "8").assert_outcomes(failed=1, passed=1)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["-x"], "-x/--maxfail"),
        (["--maxfail=2"], "-x/--maxfail"),
        (["-s"], "-s shows output"),
        (["-o", "log_cli=true"], "live logging"),
    ],
)
def test_windowed_mode_falls_back_and_says_so_once(
    suite: pytest.Pytester, args: list[str], reason: str
) -> None:
    """Options that need each verdict at once turn windowed mode off, with one header line."""
    suite.makepyfile("def test_x(audit):\n    audit.expect_none(during=0.0)\n")
    result = suite.runpytest(*FAST, "--audit-window", "8", *args)
    result.assert_outcomes(passed=1)
    lines = [line for line in result.outlines if "--audit-window ignored" in line]
    assert len(lines) == 1
    assert reason in lines[0]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--pdb"], "--pdb/--trace"),
        (["--trace"], "--pdb/--trace"),
        (["-x"], "-x/--maxfail"),
    ],
)
def test_debugging_options_block_windowed_mode(
    pytester: pytest.Pytester, args: list[str], reason: str
) -> None:
    """--pdb and --trace (which stop at a failure) are among the reasons to step aside."""
    from kubernaut_audit._plugin_window import blockers

    config = pytester.parseconfigure("-p", "no:cacheprovider", *args)
    assert any(reason in r for r in blockers(config))


def test_nothing_blocks_a_plain_run(pytester: pytest.Pytester) -> None:
    """A plain run has no reason to step aside."""
    from kubernaut_audit._plugin_window import blockers

    assert blockers(pytester.parseconfigure("-p", "no:cacheprovider")) == []


def test_stepwise_turns_windowed_mode_off(suite: pytest.Pytester) -> None:
    """--stepwise (which needs the cache) also turns windowed mode off."""
    suite.makepyfile("def test_x(audit):\n    audit.expect_none(during=0.0)\n")
    result = suite.runpytest("--audit-emulator", "--audit-window", "8", "--stepwise")
    result.assert_outcomes(passed=1)
    assert "--audit-window ignored (--stepwise stops on a failure)" in result.stdout.str()


def test_maxfail_stops_at_the_first_failed_check(suite: pytest.Pytester) -> None:
    """Under -x, a failing check stops the run at its own test, as in the default mode."""
    suite.makepyfile(
        """
        def test_1(audit):
            audit.expect(event_type="never", timeout=0.2)
        def test_2():
            pass
        """
    )
    suite.runpytest(*FAST, "--audit-window", "8", "-x").assert_outcomes(failed=1)


def test_a_plugin_owning_the_protocol_turns_windowed_mode_off(suite: pytest.Pytester) -> None:
    """Another non-wrapper pytest_runtest_protocol: windowed mode steps aside, naming it."""
    suite.makepyfile(
        ownproto="""
        from _pytest.runner import runtestprotocol
        def pytest_runtest_protocol(item, nextitem):
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            runtestprotocol(item, nextitem=nextitem)
            item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
            return True
        """
    )
    suite.makepyfile("def test_x(audit):\n    audit.expect_none(during=0.0)\n")
    suite.syspathinsert()
    result = suite.runpytest(*FAST, "--audit-window", "8", "-p", "ownproto")
    result.assert_outcomes(passed=1)
    assert "another plugin owns the test protocol (ownproto)" in result.stdout.str()


@pytest.mark.parametrize(
    ("plugin", "marker"), [("rerunfailures", "flaky"), ("pytest_forked", "forked")]
)
def test_tests_run_by_another_plugin_keep_their_place_in_order(
    suite: pytest.Pytester, plugin: str, marker: str
) -> None:
    """A test marked for pytest-rerunfailures or pytest-forked is left to that plugin, its checks
    verified after its body; held tests before it are reported first, so the report order stays
    the collection order."""
    suite.makepyfile(
        **{
            plugin: f"""
        from _pytest.runner import runtestprotocol
        def pytest_configure(config):
            config.addinivalue_line("markers", "{marker}: run by this plugin")
        def pytest_runtest_protocol(item, nextitem):
            if item.get_closest_marker("{marker}") is None:
                return None
            item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
            runtestprotocol(item, nextitem=nextitem)
            item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
            return True
        """
        }
    )
    suite.makepyfile(
        test_order=f"""
        import pytest
        def test_1(audit):
            audit.expect_none(during=0.3)
        @pytest.mark.{marker}
        def test_2(audit):
            audit.expect(event_type="never", timeout=0.2)
        def test_3(audit):
            audit.expect_none(during=0.3)
        """
    )
    suite.syspathinsert()
    result = suite.runpytest(*FAST, "-v", "--audit-window", "8", "-p", plugin)
    result.assert_outcomes(passed=2, failed=1)
    assert _outcomes(result) == [
        ("test_order.py::test_1", "PASSED"),
        ("test_order.py::test_2", "FAILED"),
        ("test_order.py::test_3", "PASSED"),
    ]
    assert "--audit-window ignored" not in result.stdout.str()


def test_audit_window_ini_and_bad_values(suite: pytest.Pytester) -> None:
    """The ini option turns windowed mode on; a negative window is a usage error."""
    suite.makeini("[pytest]\naudit_window = 4\n")
    suite.makepyfile("def test_x(audit):\n    audit.expect_none(during=0.0)\n")
    suite.runpytest(*FAST).assert_outcomes(passed=1)
    result = suite.runpytest(*FAST, "--audit-window", "-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--audit-window must be >= 0" in result.stderr.str()


# -- pytest-xdist ---------------------------------------------------------------------------


@pytest.mark.slow
def test_windowed_verdicts_under_xdist(suite: pytest.Pytester) -> None:
    """Under -n 2 windowed workers report every test once, with the default mode's verdicts
    (the worker's check that a report belongs to its running item holds)."""
    suite.makepyfile(test_mixed=_MIXED)
    args = (*FAST, "-n", "2", "-v")
    default = suite.runpytest_subprocess(*args)
    windowed = suite.runpytest_subprocess(*args, "--audit-window", "8")
    default.assert_outcomes(passed=4, failed=3, skipped=1)
    windowed.assert_outcomes(passed=4, failed=3, skipped=1)
    assert "INTERNALERROR" not in windowed.stdout.str()

    def verdicts(result: pytest.RunResult) -> list[tuple[str, str]]:
        found = re.findall(r"\[gw\d\] \[\s*\d+%\] (\w+) (\S+)", result.stdout.str())
        return sorted((name, outcome) for outcome, name in found)

    assert verdicts(windowed) == verdicts(default)
    assert len(verdicts(windowed)) == 8


@pytest.mark.slow
def test_a_crashed_worker_reports_the_tests_it_held_as_failed(suite: pytest.Pytester) -> None:
    """Tests whose verdicts a worker held when it died are reported as failed, saying why;
    the test it was running is pytest-xdist's own crash report, and the run goes on."""
    suite.makepyfile(
        """
        import os
        def test_held_1(audit):
            audit.expect_none(during=60)
        def test_held_2(audit):
            audit.expect_none(during=60)
        def test_crash():
            os._exit(3)
        def test_after():
            pass
        """
    )
    result = suite.runpytest_subprocess(*FAST, "-n", "1", "--audit-window", "8", "-rf")
    result.assert_outcomes(failed=3, passed=1)
    out = result.stdout.str()
    assert "crashed while running 'test_a_crashed_worker" in out
    for name in ("test_held_1", "test_held_2"):
        assert re.search(
            rf"_ {name} _+\n(?:\[gw0\] .*\n)?kubernaut-audit: the pytest-xdist worker holding "
            r"this test's verdict "
            r"\(gw0\) crashed before reporting it; the test ran, but whether its audit checks "
            "passed is unknown",
            out,
        )


def test_xdist_worker_contract_is_the_one_windowed_mode_relies_on() -> None:
    """Fails loudly when pytest-xdist changes how a worker ties reports to items: the worker
    sets item_index before running a test and asserts each report's nodeid against it.
    If this fails, re-check _plugin_window.XdistWorker and the supported range."""
    import inspect

    import xdist  # type: ignore[import-untyped]
    from xdist import remote

    from kubernaut_audit._plugin_window import xdist_supported

    assert xdist_supported(xdist.__version__), xdist.__version__
    run_one = inspect.getsource(remote.WorkerInteractor.run_one_test)
    assert run_one.index("self.item_index = ") < run_one.index("pytest_runtest_protocol(")
    logreport = inspect.getsource(remote.WorkerInteractor.pytest_runtest_logreport)
    assert 'data["item_index"] = self.item_index' in logreport
    assert "self.session.items[self.item_index].nodeid == report.nodeid" in logreport


def test_supported_xdist_range_matches_the_extra() -> None:
    """The range the plugin accepts is the one pyproject's xdist extra documents."""
    import tomllib

    from kubernaut_audit._plugin_window import XDIST_SUPPORTED

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    (lo_major, lo_minor), (hi_major, hi_minor) = XDIST_SUPPORTED
    assert pyproject["project"]["optional-dependencies"]["xdist"] == [
        f"pytest-xdist>={lo_major}.{lo_minor},<{hi_major}.{hi_minor}"
    ]
    dev = [d for d in pyproject["dependency-groups"]["dev"] if d.startswith("pytest-xdist")]
    pinned = dev[0].split("==")[1]
    assert XDIST_SUPPORTED[0] <= tuple(int(p) for p in pinned.split(".")[:2]) < XDIST_SUPPORTED[1]


@pytest.mark.parametrize(
    ("version", "supported"),
    [("3.5.0", False), ("3.6.1", True), ("3.8.0", True), ("3.9.0", False), ("4.0.0", False)],
)
def test_other_xdist_versions_turn_windowed_mode_off(version: str, supported: bool) -> None:
    """Versions outside the tested range are refused (the run falls back, saying so)."""
    from kubernaut_audit._plugin_window import xdist_supported

    assert xdist_supported(version) is supported
