"""Run the test suite under each supported Python other than the project venv's own.

Usage: ``pythons.py VERSION... [-- PYTEST_ARG...]`` (e.g. ``3.11 3.12 3.13 -- -n 2``), run by the
project venv's Python, whose own version ``make coverage`` already tests. Each other version gets
a venv of its own, ``.venv-X.Y``, synced from uv.lock with every extra; its interpreter is the
newest ``$PYENV_ROOT/versions/X.Y.*`` (default ``~/.pyenv``), else ``pythonX.Y`` on PATH.

A supported Python that cannot be found fails the run, loudly, after the others have run: a
green ``make test`` means every version was tested. To test fewer on purpose, say so:
``make test PYTHONS="3.11 3.12"``.

The other versions run the suite but its tests marked ``slow`` (``-m "not slow"``, before the
arguments given; the marker is registered in pyproject.toml): what can differ from one
interpreter to the next runs everywhere (the SDK's code paths, typing, pydantic and anyio under
both backends, the blocking face and its portal, tracebacks, the command line, the emulator, the
plugin in process); what does not runs once, under the venv's Python in ``make coverage``: the
docs' examples, the example suite's verdicts in three modes, volume (1,000 randomised walks, 500
concurrent waits), whole pytest-xdist sessions started by the plugin's tests, and mypy over
generated code. Without them a version takes about a minute on 2 cores instead of five.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SELECTION = ("-m", "not slow")
SUMMARY = re.compile(r"\b\d+ (passed|failed)\b.* in [\d.]+s")


def find_interpreter(version: str) -> Path | None:
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = [
        path
        for path in pyenv.glob(f"{version}.*/bin/python{version}")
        if re.fullmatch(rf"{re.escape(version)}\.\d+", path.parent.parent.name)
    ]
    if found:
        return max(found, key=lambda p: int(p.parent.parent.name.rsplit(".", 1)[1]))
    on_path = shutil.which(f"python{version}")
    return Path(on_path) if on_path else None


def run_suite(version: str, interpreter: Path, uv: str, pytest_args: list[str]) -> tuple[int, str]:
    venv = ROOT / f".venv-{version}"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON_DOWNLOADS": "never"}
    sync = [uv, "sync", "--locked", "--all-extras", "--quiet", "--python", str(interpreter)]
    subprocess.run(sync, check=True, cwd=ROOT, env=env)
    python = str(venv / "bin" / "python")
    command = [python, "-m", "pytest", *SELECTION, *pytest_args]
    summary = "no summary"
    with subprocess.Popen(
        [*command, "-q"], cwd=ROOT, stdout=subprocess.PIPE, text=True, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            if SUMMARY.search(line):
                summary = line.strip(" =\n")
    return proc.returncode, summary


def main(argv: list[str]) -> int:
    split = argv.index("--") if "--" in argv else len(argv)
    versions, pytest_args = argv[:split], argv[split + 1 :]
    own = f"{sys.version_info.major}.{sys.version_info.minor}"
    uv = os.environ.get("UV") or str(ROOT / ".tools" / "bin" / "uv")
    rows: list[tuple[str, str, str, float]] = []
    failed = False
    for version in versions:
        if version == own:
            rows.append((version, sys.executable, "tested by make coverage", 0.0))
            continue
        interpreter = find_interpreter(version)
        if interpreter is None:
            print(f"\n*** Python {version} NOT FOUND: it is supported but was not tested ***\n")
            rows.append((version, "-", "MISSING: not tested", 0.0))
            failed = True
            continue
        print(f"\n== the test suite under Python {version} ({interpreter})", flush=True)
        started = time.monotonic()
        code, summary = run_suite(version, interpreter, uv, pytest_args)
        rows.append((version, str(interpreter), summary, time.monotonic() - started))
        failed |= code != 0
    print("\nsupported Pythons:")
    for version, where, summary, seconds in rows:
        timing = f"{seconds:6.1f} s" if seconds else "        "
        print(f"  {version:<5} {timing}  {summary}  [{where}]")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
