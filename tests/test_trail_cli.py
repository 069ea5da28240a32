"""kubernaut-audit export, verify-chain, legal-hold and reconstruct, over loopback."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from trail_samples import lifecycle, new_cid, plain_events

from kubernaut_audit import ExportProgress
from kubernaut_audit._cli import EXIT_UNDETERMINED, _export_progress, main
from kubernaut_audit.emulator import Emulator
from kubernaut_audit.testing import set_testing

USER = "system:serviceaccount:kubernaut-system:auditor"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Emulator, str]]:
    emulator = Emulator()
    with emulator.serve_in_thread(host="127.0.0.1", port=0) as url:
        yield emulator, url
    emulator.close()


@pytest.fixture(scope="module")
def keyed() -> Iterator[tuple[Emulator, str]]:
    emulator = Emulator(hash_key="cli-secret")
    with emulator.serve_in_thread(host="127.0.0.1", port=0) as url:
        yield emulator, url
    emulator.close()


@pytest.fixture(autouse=True)
def _quick_retries() -> Iterator[None]:
    with set_testing(True, attempts=2):
        yield


def test_export_jsonl_writes_every_event_of_every_page(
    served: tuple[Emulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """jsonl: one exported event per line across pages, a summary on stderr."""
    emulator, url = served
    cid = new_cid()
    ids = emulator.insert_events(plain_events(cid, 5))
    argv = ["export", "--url", url, "--user", USER, "--correlation-id", cid]
    assert main([*argv, "--format", "jsonl", "--page-size", "2"]) == 0
    out, err = capsys.readouterr()
    assert [json.loads(line)["event_id"] for line in out.splitlines()] == ids
    assert "exported 5 event(s) in 3 page(s)" in err


def test_export_json_to_a_file_keeps_the_pages(
    served: tuple[Emulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """json: an array of the service's pages (metadata, events, verification) in a file."""
    emulator, url = served
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 3))
    target = tmp_path / "export.json"
    argv = ["export", "--url", url, "--user", USER, "--correlation-id", cid, "-o", str(target)]
    assert main([*argv, "--page-size", "2", "--detached-signature"]) == 0
    pages = json.loads(target.read_text())
    assert [len(p["events"]) for p in pages] == [2, 1]
    assert all(p["detached_signature"].startswith("-----BEGIN SIGNATURE-----") for p in pages)
    assert "flagged by the per-page checks" in capsys.readouterr().err


def test_export_refuses_bad_arguments_before_any_request(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A naive or malformed time is exit 2 with one line, no request sent."""
    argv = ["export", "--url", "http://127.0.0.1:9", "--start-time", "2026-01-01 00:00"]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("kubernaut-audit: error: start_time=")


def test_verify_chain_exits_0_when_intact(
    served: tuple[Emulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The service's verdict, intact: exit 0 and its message."""
    emulator, url = served
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 2))
    assert main(["verify-chain", cid, "--url", url]) == 0
    assert "no tampering detected" in capsys.readouterr().out


def test_verify_chain_exits_1_when_broken(
    served: tuple[Emulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """A tampered row: exit 1 and the event named."""
    emulator, url = served
    cid = new_cid()
    ids = emulator.insert_events(plain_events(cid, 3))
    emulator.tamper_event(ids[1], event_action="rewritten")
    assert main(["verify-chain", cid, "--url", url]) == 1
    assert ids[1] in capsys.readouterr().out


def test_verify_chain_offline_broken_and_json(
    served: tuple[Emulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """--offline --algorithm sha256-unkeyed: exit 1 and a JSON report naming the break."""
    emulator, url = served
    cid = new_cid()
    ids = emulator.insert_events(plain_events(cid, 3))
    emulator.tamper_event(ids[2], event_data={"event_type": "gateway.signal.received"})
    argv = ["verify-chain", cid, "--url", url, "--offline", "--algorithm", "sha256-unkeyed"]
    assert main([*argv, "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["verdict"], [b["event_id"] for b in report["breaks"]]) == ("broken", [ids[2]])


def test_verify_chain_offline_keyed_rows(
    keyed: tuple[Emulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Keyed rows: exit 5 (undetermined) without the key, 0 with --key-file."""
    emulator, url = keyed
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 2))
    key_file = tmp_path / "key"
    key_file.write_bytes(b"cli-secret")
    assert main(["verify-chain", cid, "--url", url, "--offline"]) == EXIT_UNDETERMINED
    assert "most likely keyed" in capsys.readouterr().out
    assert main(["verify-chain", cid, "--url", url, "--offline", "--key-file", str(key_file)]) == 0


def test_key_file_without_offline_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--key-file only means something offline."""
    assert main(["verify-chain", "rr-1", "--url", "http://127.0.0.1:9", "--key-file", "k"]) == 2
    assert "--offline only" in capsys.readouterr().err


def test_legal_hold_place_list_release(
    served: tuple[Emulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """place, list and release print one line each; a second release is exit 3."""
    emulator, url = served
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 2))
    common = ["--url", url, "--user", USER]
    assert main(["legal-hold", "place", cid, "--reason", "SEC", *common]) == 0
    assert main(["legal-hold", "list", *common]) == 0
    assert main(["legal-hold", "release", cid, "--reason", "closed", *common]) == 0
    out = capsys.readouterr().out
    assert f"held 2 event(s) of {cid} for {USER}" in out
    assert f"{cid}  2 event(s)  by {USER}" in out
    assert f"released 2 event(s) of {cid}" in out
    assert main(["legal-hold", "release", cid, "--reason", "closed", *common]) == 3
    assert "No legal hold found" in capsys.readouterr().err


def test_legal_hold_needs_an_action(capsys: pytest.CaptureFixture[str]) -> None:
    """legal-hold alone is a usage error."""
    with pytest.raises(SystemExit) as exit_info:
        main(["legal-hold"])
    assert exit_info.value.code == 2


def test_reconstruct_yaml_to_stdout_summary_to_stderr(
    served: tuple[Emulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """The YAML on stdout parses; the completeness summary is on stderr."""
    emulator, url = served
    cid = new_cid()
    emulator.insert_events(lifecycle(cid))
    assert main(["reconstruct", cid, "--url", url]) == 0
    out, err = capsys.readouterr()
    assert yaml.safe_load(out)["kind"] == "RemediationRequest"
    assert err.startswith("completeness 100%, valid")


def test_reconstruct_unknown_is_exit_3(
    served: tuple[Emulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """No relevant events: the service's 404 as one line, exit 3."""
    _, url = served
    assert main(["reconstruct", "rr-nobody", "--url", url]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "No audit events found" in err


def test_export_progress_line_rewrites_itself() -> None:
    """On a terminal the export shows one self-overwriting progress line."""
    stream = io.StringIO()
    show = _export_progress(stream)
    show(ExportProgress(pages=1, events=1000, offset=1000, last_page=1000))
    show(ExportProgress(pages=2, events=1400, offset=1400, last_page=400))
    assert stream.getvalue() == ("\rexporting: page 1, 1000 events\rexporting: page 2, 1400 events")


def test_serve_with_an_unreadable_hash_key_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """serve --hash-key-file names the file it cannot read, exit 2, before serving."""
    missing = tmp_path / "no-such-key"
    assert main(["serve", "--hash-key-file", str(missing)]) == 2
    assert f"cannot read {missing}" in capsys.readouterr().err
