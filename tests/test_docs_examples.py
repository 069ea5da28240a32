"""Every code block of the README and ``docs/`` runs or is type-checked (see docs_examples.py).

The examples run against a local Data Storage served on loopback (``$DATA_STORAGE_URL``) holding
the seeded audit trail of ``rr-2025-001``; the stand-ins of ``docs_stage`` play the services.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import json
import os
import subprocess
import sys
import tomllib
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docs_stage
import pytest
import yaml
from docs_examples import (
    CONFIG_KIND,
    CONSOLE,
    OUTPUT_KIND,
    PYTEST,
    ROOT,
    RUN,
    TESTS,
    Block,
    BlockError,
    all_blocks,
    chains,
    kind_of,
    module_name,
    padded,
    stage_header,
    unmatched_line,
)

from kubernaut_audit.emulator import Emulator

pytestmark = [pytest.mark.xdist_group("docs"), pytest.mark.slow]

BLOCKS = all_blocks()
CHAINS = list(chains(BLOCKS))
BIN = Path(sys.executable).parent


def _ids(chain: list[Block]) -> str:
    return chain[0].where


def _where(block: Block) -> str:
    return block.where


@dataclass(frozen=True)
class Stage:
    url: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def stage() -> Iterator[Stage]:
    """A Data Storage on loopback with the seeded remediation, and the environment to reach it."""
    with Emulator() as emulator:
        docs_stage.seed(emulator)
        with emulator.serve_in_thread(host="127.0.0.1", port=0) as url:
            env = {
                "DATA_STORAGE_URL": url,
                "KUBERNAUT_AUDIT_FLUSH_INTERVAL": str(docs_stage.FLUSH_INTERVAL),
            }
            try:
                yield Stage(url=url, env=env)
            finally:
                docs_stage.close()


def _subprocess_env(stage: Stage) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATA_STORAGE_", "PYTEST_"))}
    env.pop("KUBERNAUT_AUDIT_FLUSH_INTERVAL", None)
    env.update(stage.env)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(TESTS)
    env["COLUMNS"] = "100"
    return env


# -- Python scripts --------------------------------------------------------------------------------


#: What each script chain printed, by the where of its first block.
_PRINTED: dict[str, str] = {}


def _run_script(chain: list[Block], stage: Stage, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in stage.env.items():
        monkeypatch.setenv(name, value)
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    for name in {n for block in chain for n in block.stage_names()}:
        namespace[name] = getattr(docs_stage, name)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for block in chain:
            code = compile(padded([block]), str(ROOT / block.source), "exec")
            exec(code, namespace)
    _PRINTED[chain[0].where] = printed.getvalue()
    return printed.getvalue()


@pytest.mark.parametrize("chain", [c for c in CHAINS if kind_of(c[0]) == RUN], ids=_ids)
def test_script_runs(chain: list[Block], stage: Stage, monkeypatch: pytest.MonkeyPatch) -> None:
    """A script block (with the blocks that continue it) runs without an exception."""
    _run_script(chain, stage, monkeypatch)


# -- Python test modules ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ModuleResult:
    outcomes: Counter[str]
    output: str


@pytest.fixture(scope="module")
def pytest_results(stage: Stage, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Run every test-module block with pytest, one process per set of options."""
    groups: dict[str, list[list[Block]]] = defaultdict(list)
    for chain in CHAINS:
        if kind_of(chain[0]) == PYTEST:
            groups[chain[0].options.get("args", "")].append(chain)
    results: dict[str, Any] = {}
    for n, (args, members) in enumerate(sorted(groups.items())):
        folder = tmp_path_factory.mktemp(f"docs-pytest-{n}")
        files = {}
        for chain in members:
            name = module_name(chain)
            path = folder / f"{name}.py"
            path.write_text(padded(chain, header=stage_header(chain)), encoding="utf-8")
            files[name] = (chain, path)
        report = folder / "report.xml"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-q",
                "-rA",
                "--timeout=120",
                f"--junitxml={report}",
                *args.split(),
                *(str(p) for _, p in files.values()),
            ],
            cwd=folder,
            env=_subprocess_env(stage),
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = proc.stdout + proc.stderr
        for chain, path in files.values():
            output = output.replace(str(path), chain[0].source).replace(path.name, chain[0].source)
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        if report.exists():
            for case in ET.parse(report).getroot().iter("testcase"):
                module = case.get("classname", "").split(".")[0]
                outcome = "passed"
                for child in case:
                    if child.tag in ("failure", "error", "skipped"):
                        outcome = {"failure": "failed", "error": "errors"}.get(child.tag, child.tag)
                counts[module][outcome] += 1
        for name in files:
            results[name] = ModuleResult(outcomes=counts[name], output=output)
    return results


@pytest.mark.parametrize("chain", [c for c in CHAINS if kind_of(c[0]) == PYTEST], ids=_ids)
def test_test_module_passes(chain: list[Block], pytest_results: dict[str, ModuleResult]) -> None:
    """A block of tests gives the outcome it promises (by default: every test passes)."""
    result = pytest_results[module_name(chain)]
    expected = chain[0].options.get("outcome")
    if expected is None:
        ok = bool(result.outcomes) and set(result.outcomes) == {"passed"}
    else:
        wanted = Counter({k: int(v) for k, v in (w.split("=") for w in expected.split())})
        ok = result.outcomes == wanted
    assert ok, (
        f"{chain[0].where}: outcomes {dict(result.outcomes)}, expected {expected or 'all passed'}"
        f"\n{result.output}"
    )


# -- type checking ---------------------------------------------------------------------------------

_MYPY_CONFIG = """\
[mypy]
python_version = 3.11
strict = True
allow_untyped_defs = True
allow_incomplete_defs = True
allow_untyped_calls = True
warn_unused_ignores = True
plugins = pydantic.mypy
"""


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """Type-check every Python block (chains as one module) in one mypy run."""
    folder = tmp_path_factory.mktemp("docs-mypy")
    (folder / "mypy.ini").write_text(_MYPY_CONFIG, encoding="utf-8")
    files: dict[str, list[Block]] = {}
    for chain in CHAINS:
        path = folder / f"{module_name(chain)}.py"
        path.write_text(padded(chain, header=stage_header(chain)), encoding="utf-8")
        files[str(path)] = chain
    env = {**os.environ, "MYPYPATH": str(TESTS)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(folder / "mypy.ini"),
            "--cache-dir",
            str(ROOT / ".mypy_cache" / "docs-examples"),
            "--show-error-codes",
            "--no-error-summary",
            *files,
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode not in (0, 1):
        pytest.fail(f"mypy could not run:\n{proc.stdout}{proc.stderr}")
    by_name = {Path(name).name: chain for name, chain in files.items()}
    errors: dict[str, list[str]] = defaultdict(list)
    for line in proc.stdout.splitlines():
        reported, sep, rest = line.partition(":")
        found = by_name.get(Path(reported).name) if sep else None
        if found is not None:
            errors[found[0].where].append(f"{ROOT / found[0].source}:{rest}")
        elif line.strip():
            errors[ELSEWHERE].append(line)
    if proc.returncode and not errors:
        errors[ELSEWHERE].append(proc.stdout + proc.stderr)
    return errors


ELSEWHERE = "(outside the blocks)"


@pytest.mark.parametrize("chain", CHAINS, ids=_ids)
def test_python_block_type_checks(chain: list[Block], mypy_errors: dict[str, list[str]]) -> None:
    """A Python block (and the blocks continuing it) passes mypy."""
    problems = mypy_errors.get(chain[0].where, [])
    assert not problems, "\n".join(problems)


def test_type_check_reports_only_block_errors(mypy_errors: dict[str, list[str]]) -> None:
    """mypy found nothing it could not attribute to a block (or it failed to run)."""
    assert not mypy_errors.get(ELSEWHERE), "\n".join(mypy_errors[ELSEWHERE])


# -- console ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [b for b in BLOCKS if kind_of(b) == CONSOLE], ids=_where)
def test_console_block_runs(block: Block, stage: Stage, tmp_path: Path) -> None:
    """Every ``$`` command of a console block exits with the status it promises (0 by default)."""
    for other in BLOCKS:
        if other.source == block.source and other.file_name:
            target = tmp_path / other.file_name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(other.code + "\n", encoding="utf-8")
    commands = block.commands()
    codes = [int(c) for c in block.options.get("exit", "").split()] or [0] * len(commands)
    assert len(codes) == len(commands), f"{block.where}: exit= needs one code per command"
    for (line, command, shown), code in zip(commands, codes, strict=True):
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            cwd=tmp_path,
            env=_subprocess_env(stage),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == code, (
            f"{block.source}:{line}: `{command}` exited {proc.returncode}, expected {code}\n"
            f"{proc.stdout}{proc.stderr}"
        )
        missing = unmatched_line(shown, proc.stdout + proc.stderr)
        assert missing is None, (
            f"{block.source}:{line}: `{command}` did not print the line shown\n  {missing}\n"
            f"it printed:\n{proc.stdout}{proc.stderr}"
        )


# -- output shown in the docs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "block", [b for b in BLOCKS if kind_of(b) == OUTPUT_KIND and "from" in b.options], ids=_where
)
def test_shown_output_is_real(
    block: Block,
    request: pytest.FixtureRequest,
    stage: Stage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A text block that shows what a block printed (``from="<title>"``) shows lines it printed.

    The source is a block of the same page with that title: a test module (its pytest output)
    or a script (what it printed).
    """
    sources = [
        chain
        for chain in CHAINS
        if chain[0].source == block.source and chain[0].title == block.options["from"]
    ]
    assert sources, f"{block.where}: no Python block titled {block.options['from']!r} here"
    chain = sources[0]
    if kind_of(chain[0]) == PYTEST:
        results: dict[str, ModuleResult] = request.getfixturevalue("pytest_results")
        output = results[module_name(chain)].output
    else:
        output = _PRINTED.get(chain[0].where) or _run_script(chain, stage, monkeypatch)
    missing = unmatched_line(block.code.split("\n"), output, loose=kind_of(chain[0]) == PYTEST)
    assert missing is None, (
        f"{block.where}: this line is not in the output of {block.options['from']}:\n"
        f"  {missing}\nthe output:\n{output}"
    )


# -- configuration files ---------------------------------------------------------------------------


@pytest.mark.parametrize("block", [b for b in BLOCKS if kind_of(b) == CONFIG_KIND], ids=_where)
def test_config_block_parses(block: Block) -> None:
    """A configuration block is valid in its format."""
    lang = block.lang.lower()
    if lang == "toml":
        tomllib.loads(block.code)
    elif lang in ("yaml", "yml"):
        yaml.safe_load(block.code)
    elif lang == "json":
        json.loads(block.code)
    else:
        configparser.ConfigParser().read_string(block.code, source=block.where)


# -- bookkeeping -----------------------------------------------------------------------------------


def test_every_block_is_checked_or_marked() -> None:
    """No block escapes: each is executed, type-checked, parsed, output, or marked not run."""
    problems = []
    for block in BLOCKS:
        try:
            _ = block.kind
        except BlockError as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems)
