"""The kubernaut-audit command, driven as a user would against the emulator over loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from without_modules import EMULATOR_EXTRA, run_without

from kubernaut_audit import AuditClient
from kubernaut_audit._cli import EXIT_CRASH, main
from kubernaut_audit.emulator import Emulator, make_event
from kubernaut_audit.testing import set_testing


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Emulator, str]]:
    emulator = Emulator()
    with emulator.serve_in_thread(host="127.0.0.1", port=0) as url:
        yield emulator, url
    emulator.close()


@pytest.fixture(autouse=True)
def _quick_retries() -> Iterator[None]:
    with set_testing(True, attempts=2):
        yield


def _seed(emulator: Emulator, cid: str, *types: str) -> None:
    emulator.insert_events(make_event(cid, t) for t in types)


def test_events_prints_a_table_that_fits_the_terminal(
    served: tuple[Emulator, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default table lists each event on one line no wider than the terminal."""
    emulator, url = served
    _seed(emulator, "cli-table", "gateway.signal.received", "gateway.crd.created")
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["events", "--url", url, "--correlation-id", "cli-table"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("TIMESTAMP (UTC)")
    assert len(lines) == 3
    assert all(len(line) <= 80 for line in lines)
    assert any("gateway.crd.created" in line for line in lines)


def test_events_jsonl_is_one_event_per_line_in_a_stable_field_order(
    served: tuple[Emulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """jsonl gives one JSON object per line, envelope fields in the same order every time."""
    emulator, url = served
    _seed(emulator, "cli-jsonl", "a.b.c", "a.b.d")
    assert main(["events", "--url", url, "--correlation-id", "cli-jsonl", "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["event_type"] for r in rows} == {"a.b.c", "a.b.d"}
    assert list(rows[0])[:3] == list(rows[1])[:3] == ["event_id", "event_date", "version"]


def test_events_json_all_pages(
    served: tuple[Emulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """--all --format json prints every event as one JSON array."""
    emulator, url = served
    _seed(emulator, "cli-all", *["x.y.z"] * 7)
    argv = ["events", "--url", url, "--correlation-id", "cli-all", "--all", "--format", "json"]
    assert main(argv) == 0
    assert len(json.loads(capsys.readouterr().out)) == 7


def test_events_reads_the_url_from_the_environment(
    served: tuple[Emulator, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without --url, DATA_STORAGE_URL names the server."""
    emulator, url = served
    _seed(emulator, "cli-env", "a.b.c")
    monkeypatch.setenv("DATA_STORAGE_URL", url)
    assert main(["events", "--correlation-id", "cli-env", "--format", "jsonl"]) == 0
    assert "a.b.c" in capsys.readouterr().out


def test_wait_exits_zero_when_met(
    served: tuple[Emulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """wait returns 0 and prints the events and a summary."""
    emulator, url = served
    _seed(emulator, "cli-wait", "gateway.signal.received")
    argv = ["wait", "--url", url, "--correlation-id", "cli-wait"]
    assert main([*argv, "--event-type", "gateway.signal.received"]) == 0
    captured = capsys.readouterr()
    assert "gateway.signal.received" in captured.out
    assert "1 event(s) after" in captured.err


def test_wait_exits_one_with_the_diagnostic_on_timeout(
    served: tuple[Emulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A timeout exits 1 and prints what arrived, without a traceback."""
    emulator, url = served
    _seed(emulator, "cli-timeout", "gateway.crd.failed")
    argv = ["wait", "--url", url, "--correlation-id", "cli-timeout", "--event-type", "a.b.c"]
    assert main([*argv, "--timeout", "0.3", "--flush-interval", "0.1"]) == 1
    err = capsys.readouterr().err
    assert "timed out waiting for audit events" in err
    assert "gateway.crd.failed ×1" in err
    assert "Traceback" not in err


def test_wait_takes_the_writer_kind(
    served: tuple[Emulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """wait --writer since-last-write waits as any wait does; an unknown kind is refused."""
    emulator, url = served
    _seed(emulator, "cli-writer", "aiagent.llm.request")
    argv = ["wait", "--url", url, "--correlation-id", "cli-writer"]
    assert main([*argv, "--writer", "since-last-write"]) == 0
    assert "1 event(s) after" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main([*argv, "--writer", "grid"])
    assert info.value.code == 2


def test_a_bad_writer_variable_exits_two_naming_it(
    served: tuple[Emulator, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """KUBERNAUT_AUDIT_WRITER naming no kind: one line naming the variable, exit 2."""
    _, url = served
    monkeypatch.setenv("KUBERNAUT_AUDIT_WRITER", "grid")
    assert main(["wait", "--url", url, "--correlation-id", "x"]) == 2
    assert "KUBERNAUT_AUDIT_WRITER" in capsys.readouterr().err


def test_usage_errors_exit_two(capsys: pytest.CaptureFixture[str]) -> None:
    """A missing --correlation-id is a usage error (exit 2)."""
    with pytest.raises(SystemExit) as info:
        main(["wait", "--url", "http://127.0.0.1:9"])
    assert info.value.code == 2
    assert "--correlation-id" in capsys.readouterr().err


def test_missing_configuration_exits_two_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """No URL anywhere: one clear line naming DATA_STORAGE_URL, exit 2."""
    assert main(["events", "--correlation-id", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "DATA_STORAGE_URL" in err[0]


def test_an_empty_filter_is_refused_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    """--correlation-id '' would list every test's events: refused, exit 2."""
    assert main(["events", "--url", "http://127.0.0.1:9", "--correlation-id", ""]) == 2
    assert "non-empty" in capsys.readouterr().err


def test_server_errors_exit_three(
    served: tuple[Emulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A 404 from a wrong URL prefix exits 3 with the status in one line."""
    _, url = served
    assert main(["events", "--url", url + "/wrong", "--correlation-id", "x"]) == 3
    assert "404" in capsys.readouterr().err


def test_unreachable_server_exits_four(capsys: pytest.CaptureFixture[str]) -> None:
    """Connection refused exits 4 without a traceback."""
    assert main(["events", "--url", "http://127.0.0.1:9", "--correlation-id", "x"]) == 4
    err = capsys.readouterr().err
    assert "could not reach Data Storage" in err
    assert "Traceback" not in err


def test_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    """--help carries runnable examples and the exit codes."""
    with pytest.raises(SystemExit):
        main(["wait", "--help"])
    out = capsys.readouterr().out
    assert "kubernaut-audit wait --correlation-id" in out
    assert "exit codes" in out


def test_demo_runs_against_the_built_in_data_storage(capsys: pytest.CaptureFixture[str]) -> None:
    """The demo prints a timeline and exits 0 with no setup."""
    assert main(["demo", "--rounds", "2", "--flush-interval", "0.2"]) == 0
    out = capsys.readouterr().out
    assert out.count("noticed at") == 2
    assert "time.sleep(5)" in out


def test_module_entry_point_and_version() -> None:
    """python -m kubernaut_audit --version prints the installed version."""
    done = subprocess.run(
        [sys.executable, "-m", "kubernaut_audit", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "0.1.0"


@pytest.mark.parametrize("output", ["jsonl", "json"])
def test_a_reader_that_goes_away_stops_the_command_quietly(
    served: tuple[Emulator, str], output: str
) -> None:
    """`kubernaut-audit events ... | head -1`: no traceback, the shell's exit status for a
    broken pipe (141), line by line or in one document (3,000 events: more than a pipe holds)."""
    emulator, url = served
    _seed(emulator, f"cli-pipe-{output}", *["gateway.signal.received"] * 3000)
    command = [sys.executable, "-m", "kubernaut_audit", "events", "--url", url]
    command += ["--correlation-id", f"cli-pipe-{output}", "--all", "--format", output]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.readline()  # far less than it writes: the pipe fills, it blocks
        proc.stdout.close()
        assert proc.wait(60) == 141
        assert proc.stderr.read() == b""


@pytest.mark.usefixtures("ctrl_c_interrupts")
def test_serve_prints_its_url_and_stops_on_interrupt() -> None:
    """serve binds a free loopback port, answers /readyz, and exits 0 on Ctrl-C."""
    with subprocess.Popen(
        [sys.executable, "-m", "kubernaut_audit", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().rsplit(" ", 1)[-1].strip()
            assert url.startswith("http://127.0.0.1:")
            # Bounds for a loaded machine: they only end a failing test, never time a pass.
            assert httpx.get(url + "/readyz", timeout=30).json() == {"status": "ready"}
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(timeout=60)
            finally:
                proc.kill()  # a server that ignored Ctrl-C must not outlive the test
    assert code == 0


def test_serve_with_an_unreadable_spec_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """serve --spec naming no file exits 2 and says which file, before serving anything."""
    missing = tmp_path / "nowhere.yaml"
    assert main(["serve", "--spec", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_serve_with_a_spec_that_is_neither_json_nor_yaml_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A truncated spec file exits 2 naming it, not 70 as if kubernaut-audit had a bug."""
    broken = tmp_path / "ds.json"
    broken.write_text('{"openapi": "3.0.3", "components": {')
    assert main(["serve", "--spec", str(broken)]) == 2
    assert "neither JSON nor YAML" in capsys.readouterr().err


@pytest.mark.parametrize("pair", ["alice", "=tok", "alice="])
def test_serve_token_wants_user_equals_token(pair: str, capsys: pytest.CaptureFixture[str]) -> None:
    """serve --token without USER=TOKEN exits 2 without echoing a token."""
    assert main(["serve", "--token", pair]) == 2
    assert "USER=TOKEN" in capsys.readouterr().err


@pytest.mark.usefixtures("ctrl_c_interrupts")
def test_serve_with_a_token_turns_auth_on() -> None:
    """serve --token alice=s3cret serves with the auth middleware on."""
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubernaut_audit",
            "serve",
            "--port",
            "0",
            "--token",
            "alice=s3cret",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().rsplit(" ", 1)[-1].strip()
            events = url + "/api/v1/audit/events"
            assert httpx.get(events).status_code == 401
            assert httpx.get(events, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            finally:
                proc.kill()  # a server that ignored Ctrl-C must not outlive the test


def _stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("pages", [[], ["--all"]], ids=["first-page", "all"])
def test_events_since_excludes_older_events(
    served: tuple[Emulator, str], capsys: pytest.CaptureFixture[str], pages: list[str]
) -> None:
    """--since 1h leaves out a 3-day-old event, with or without --all."""
    emulator, url = served
    cid = f"cli-since-{len(pages)}"
    old = _stamp(datetime.now(UTC) - timedelta(days=3))
    emulator.insert_events(
        [make_event(cid, "old.event", event_timestamp=old), make_event(cid, "new")]
    )
    argv = ["events", "--url", url, "--correlation-id", cid, "--since", "1h"]
    assert main([*argv, *pages, "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["event_type"] for r in rows] == ["new"]


def test_events_until_bounds_every_page(
    served: tuple[Emulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """--until with --all leaves out events after the bound."""
    emulator, url = served
    old = _stamp(datetime.now(UTC) - timedelta(days=3))
    emulator.insert_events(
        [make_event("cli-until", "old.event", event_timestamp=old), make_event("cli-until", "new")]
    )
    until = _stamp(datetime.now(UTC) - timedelta(days=1))
    argv = ["events", "--url", url, "--correlation-id", "cli-until", "--until", until, "--all"]
    assert main([*argv, "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["event_type"] for r in rows] == ["old.event"]


def test_events_all_pages_by_limit(
    served: tuple[Emulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """--all with --limit walks pages of that size and still prints every event."""
    emulator, url = served
    _seed(emulator, "cli-pages", *["x.y.z"] * 5)
    before = emulator.stats.requests
    argv = ["events", "--url", url, "--correlation-id", "cli-pages", "--all", "--limit", "2"]
    assert main([*argv, "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 5
    assert emulator.stats.requests - before >= 3


@pytest.mark.parametrize(
    "argv",
    [
        ["events", "--since", "yesterday"],
        ["events", "--limit", "0"],
        ["events", "--outcome", "sideways"],
        ["wait", "--count", "1", "--min-count", "2"],
    ],
    ids=["since", "limit", "outcome", "counts"],
)
def test_refused_arguments_exit_two_before_any_request(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """An argument the SDK refuses is a usage error (exit 2), found before connecting."""
    # Port 9 is closed: a request would exit 4, so exit 2 proves none was made.
    assert main([*argv, "--url", "http://127.0.0.1:9", "--correlation-id", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("kubernaut-audit: error: ")
    assert "could not reach" not in err


def test_an_unexpected_value_error_is_a_crash_not_a_usage_error(
    served: tuple[Emulator, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ValueError from inside the SDK exits 70 with its traceback, not 2."""
    _, url = served

    def broken(self: AuditClient, **filters: object) -> list[object]:
        raise ValueError("an SDK bug")

    monkeypatch.setattr(AuditClient, "list_audit_events", broken)
    assert main(["events", "--url", url, "--correlation-id", "x", "--all"]) == EXIT_CRASH == 70
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "ValueError: an SDK bug" in err
    assert "usage" not in err
    assert "internal error" in err


def test_an_unrelated_import_error_is_a_crash_not_a_missing_extra(
    served: tuple[Emulator, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A missing module other than the emulator extra's is reported as the bug it is."""
    _, url = served

    def broken(self: AuditClient, **filters: object) -> list[object]:
        raise ModuleNotFoundError("No module named 'yaml'", name="yaml")

    monkeypatch.setattr(AuditClient, "list_audit_events", broken)
    assert main(["events", "--url", url, "--correlation-id", "x", "--all"]) == 70
    err = capsys.readouterr().err
    assert "install kubernaut-audit[emulator]" not in err
    assert "ModuleNotFoundError" in err


@pytest.mark.parametrize("command", [["serve"], ["demo", "--rounds", "1"]])
def test_commands_needing_the_emulator_say_which_extra_to_install(command: list[str]) -> None:
    """Without starlette/uvicorn, serve and demo exit 2 naming the emulator extra."""
    result = run_without(
        EMULATOR_EXTRA,
        f"""
        from kubernaut_audit._cli import main
        sys.exit(main({command!r}))
        """,
    )
    assert result.returncode == 2, result.stderr
    assert "install kubernaut-audit[emulator]" in result.stderr
    assert "Traceback" not in result.stderr
