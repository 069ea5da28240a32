"""The example suite proves that every mode gives the same verdicts: with the tests that must
fail (``tests/examples/must_fail.py``), exactly those fail, as FAIL, in the default mode, in
windowed mode and under ``-n 4``, with identical JUnit test cases, ``--lf`` set, ``-v`` lines
and short summary.

The three runs go in parallel: they spend their time waiting for the 2 s writer.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "tests" / "examples"
MUST_FAIL = {
    "tests/examples/must_fail.py::test_an_event_that_never_comes",
    "tests/examples/must_fail.py::test_an_unexpected_event",
    "tests/examples/must_fail.py::test_a_count_that_is_off",
    "tests/examples/must_fail.py::test_an_ordinary_assert",
}
PASSING = 40

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.xdist_group("example-verdicts"),
    pytest.mark.slow,
]


def _normalized(text: str) -> str:
    """Without what differs from run to run: ids, ports, durations, poll counts, workers."""
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<uuid>", text)
    text = re.sub(r"-(main|gw\d+)-", "-<worker>-", text)
    text = re.sub(r"-[0-9a-f]{12}\b", "-<cid>", text)
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", text)
    text = re.sub(r"0x[0-9a-f]+", "0x<address>", text)
    text = re.sub(r"\d+\.\d+s\b", "<t>s", text)
    return re.sub(r"\(\d+ polls", "(<n> polls", text)


@dataclass
class Run:
    name: str
    stdout: str
    junit: Path
    cache: Path

    def cases(self) -> list[tuple[str, str, str, str]]:
        """(classname, name, outcome element, its message's first line) per JUnit test case.

        The first line is the exception and the verdict's headline; the diagnostic below it
        reports how the polls went (a poll that timed out on a loaded machine adds a line).
        """
        found = []
        for case in ET.parse(self.junit).getroot().iter("testcase"):
            kids = [k for k in case if k.tag in {"failure", "error", "skipped"}]
            tag = kids[0].tag if kids else "passed"
            first = (kids[0].get("message") or "").partition("\n")[0] if kids else ""
            message = _normalized(first)
            found.append((case.get("classname") or "", case.get("name") or "", tag, message))
        return sorted(found)

    def verbose_lines(self) -> list[tuple[str, str]]:
        """(nodeid, outcome) per -v result line, in the order printed."""
        xdist = re.compile(r"^\[gw\d+\](?: \[\s*\d+%\])? (PASSED|FAILED|ERROR) (\S+::\S+)")
        sequential = re.compile(r"^(\S+::\S+) (PASSED|FAILED|ERROR)\b")
        lines = []
        for line in self.stdout.splitlines():
            if m := sequential.match(line):
                lines.append((m[1], m[2]))
            elif m := xdist.match(line):
                lines.append((m[2], m[1]))
        return lines

    def summary(self) -> list[str]:
        """The short summary's lines up to each exception's class, and the final counts."""
        lines = self.stdout.splitlines()
        start = next(i for i, line in enumerate(lines) if "short test summary info" in line)
        found = [
            m[0]
            for line in lines[start + 1 : -1]
            if (m := re.match(r"(FAILED|ERROR) \S+(?: - [\w.]+)?", line))
        ]
        counts = re.sub(r" in [\d.]+s.*", "", lines[-1].strip("= "))
        return [*sorted(found), counts]

    def last_failed(self) -> set[str]:
        data = json.loads((self.cache / "v" / "cache" / "lastfailed").read_text())
        return set(data)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """The example suite with the must-fail tests, run in the three modes at once."""
    tmp = tmp_path_factory.mktemp("verdicts")
    modes = {
        "default": [],
        "windowed": ["--audit-window", "64"],
        "xdist": ["-n", "4", "--audit-window", "64"],
    }
    procs = {}
    for name, extra in modes.items():
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "tests/examples",
            "--audit-emulator",
            "-v",
            "-rfE",
            "-o",
            "addopts=",  # the project's addopts turn the cache (and so --lf) off
            "--strict-markers",
            "-o",
            f"cache_dir={tmp / name / 'cache'}",
            "-o",
            "python_files=test_*.py must_fail.py",
            "-o",
            "console_output_style=classic",
            f"--junitxml={tmp / name / 'junit.xml'}",
            *extra,
        ]
        env = {**os.environ, "COLUMNS": "200"}
        env.pop("KUBERNAUT_AUDIT_EXAMPLES_BASELINE", None)
        procs[name] = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    results = {}
    for name, proc in procs.items():
        out, _ = proc.communicate(timeout=800)
        assert proc.returncode == 1, f"{name} run exited {proc.returncode}:\n{out[-3000:]}"
        results[name] = Run(name, out, tmp / name / "junit.xml", tmp / name / "cache")
    return results


@pytest.mark.parametrize("mode", ["default", "windowed", "xdist"])
def test_exactly_the_must_fail_tests_fail_as_failures(runs: dict[str, Run], mode: str) -> None:
    """In each mode the four must-fail tests are FAILs (never errors) and the rest pass."""
    cases = runs[mode].cases()
    failed = {f"tests/examples/must_fail.py::{n}" for c, n, tag, _ in cases if tag == "failure"}
    assert failed == MUST_FAIL
    assert [c for c in cases if c[2] == "error"] == []
    assert sum(1 for c in cases if c[2] == "passed") == PASSING


@pytest.mark.parametrize("mode", ["windowed", "xdist"])
def test_junit_cases_are_identical(runs: dict[str, Run], mode: str) -> None:
    """The JUnit test cases (names, outcome, failure message) match the default mode's."""
    assert runs[mode].cases() == runs["default"].cases()


@pytest.mark.parametrize("mode", ["windowed", "xdist"])
def test_last_failed_sets_are_identical(runs: dict[str, Run], mode: str) -> None:
    """--lf would re-run the same tests after any of the modes."""
    assert runs[mode].last_failed() == runs["default"].last_failed() == MUST_FAIL


def test_verbose_output_is_identical_in_windowed_mode(runs: dict[str, Run]) -> None:
    """Sequential windowed mode prints the same -v lines in the same (collection) order."""
    default = runs["default"].verbose_lines()
    assert len(default) == PASSING + len(MUST_FAIL)
    assert runs["windowed"].verbose_lines() == default


def test_verbose_output_has_the_same_verdicts_under_xdist(runs: dict[str, Run]) -> None:
    """Under -n 4 the -v lines carry the same verdicts (in pytest-xdist's own order)."""
    assert sorted(runs["xdist"].verbose_lines()) == sorted(runs["default"].verbose_lines())


@pytest.mark.parametrize("mode", ["windowed", "xdist"])
def test_short_summaries_are_identical(runs: dict[str, Run], mode: str) -> None:
    """The terminal's short summary lists the same failures with the same messages."""
    assert runs[mode].summary() == runs["default"].summary()
    assert runs["default"].summary()[-1] == f"{len(MUST_FAIL)} failed, {PASSING} passed"
