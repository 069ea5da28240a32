"""Smoke-test what we ship: the sdist and the wheel ``uv build`` made, each installed (with the
``emulator`` extra, at the versions uv.lock pins) into a fresh venv and used from outside the
repository: import, ``py.typed``, the command's ``--help``, and a wait against the emulator.

Usage: ``smoke_dist.py DIST_DIR`` (uv from ``$UV``, else ``.tools/bin/uv``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_FILES = ("kubernaut_audit/py.typed", "kubernaut_audit/_templates/Enum.jinja2")
SDIST_FILES = ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md")

SMOKE = """
import importlib.metadata, importlib.resources, pathlib, subprocess, sys, uuid
import kubernaut_audit
from kubernaut_audit import AuditClient
from kubernaut_audit.emitters import BufferedEmitter
from kubernaut_audit.emulator import Emulator, make_event

here = pathlib.Path(kubernaut_audit.__file__).resolve().parent
assert pathlib.Path(sys.prefix).resolve() in here.parents, f"imported from {here}"
assert importlib.resources.files("kubernaut_audit").joinpath("py.typed").is_file(), "py.typed"
assert kubernaut_audit.__version__ == importlib.metadata.version("kubernaut-audit")
cli = str(pathlib.Path(sys.prefix) / "bin" / "kubernaut-audit")
help_text = subprocess.run([cli, "--help"], capture_output=True, text=True, check=True).stdout
assert "kubernaut-audit wait --correlation-id" in help_text, help_text

cid = f"smoke-{uuid.uuid4().hex[:8]}"
emulator = Emulator()
with emulator.serve_in_thread() as url:
    with BufferedEmitter(url, flush_interval=0.2) as emitter, AuditClient(
        base_url=url, flush_interval=0.2
    ) as client:
        emitter.emit(make_event(cid, "gateway.signal.received"))
        got = client.wait_for_audit_events(cid, event_types=["gateway.signal.received"])
    assert [e.event_type for e in got] == ["gateway.signal.received"], got
    waited = subprocess.run(
        [cli, "wait", "--url", url, "--correlation-id", cid, "--format", "jsonl"],
        capture_output=True, text=True,
    )
    assert waited.returncode == 0, waited.stderr
emulator.close()
print(f"  ok: kubernaut-audit {kubernaut_audit.__version__} imported from {here}")
"""


def _run(*command: str | Path, **options: object) -> None:
    subprocess.run([str(part) for part in command], check=True, **options)  # type: ignore[call-overload]


def _check_names(kind: str, names: set[str], wanted: list[str], *, tests: bool) -> None:
    missing = [name for name in wanted if not any(n.endswith(name) for n in names)]
    if missing:
        raise SystemExit(f"the {kind} lacks {missing}")
    unwanted = ["/.venv", "/dist/", "__pycache__", *([] if tests else ["/tests/"])]
    stray = sorted(n for n in names if any(part in f"/{n}" for part in unwanted))
    if stray:
        raise SystemExit(f"the {kind} ships files it should not: {stray[:5]}")


def main(argv: list[str]) -> int:
    dist = Path(argv[0]).resolve()
    uv = os.environ.get("UV") or str(ROOT / ".tools" / "bin" / "uv")
    [wheel] = sorted(dist.glob("*.whl"))
    [sdist] = sorted(dist.glob("*.tar.gz"))
    with zipfile.ZipFile(wheel) as archive:
        _check_names("wheel", set(archive.namelist()), list(PACKAGE_FILES), tests=False)
    with tarfile.open(sdist) as archive:
        sdist_names = set(archive.getnames())
    wanted = [*SDIST_FILES, *(f"src/{f}" for f in PACKAGE_FILES)]
    _check_names("sdist", sdist_names, wanted, tests=True)

    constraints = dist / "constraints.txt"
    _run(
        uv, "export", "--frozen", "--no-dev", "--all-extras", "--no-emit-project",
        "--no-hashes", "--quiet", "--output-file", constraints, cwd=ROOT,
    )  # fmt: skip
    base_python = getattr(sys, "_base_executable", sys.executable)
    for kind, artifact in (("wheel", wheel), ("sdist", sdist)):
        print(f"smoke test of the {kind}: {artifact.name}")
        venv = dist / f"venv-{kind}"
        _run(uv, "venv", "--quiet", "--python", base_python, venv)
        python = venv / "bin" / "python"
        _run(
            uv, "pip", "install", "--quiet", "--python", python,
            "--constraints", constraints, f"{artifact}[emulator]",
        )  # fmt: skip
        with tempfile.TemporaryDirectory() as elsewhere:  # never import the repository's src/
            _run(python, "-W", "error", "-c", SMOKE, cwd=elsewhere)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
