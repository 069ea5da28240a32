"""The generated models match a fresh generation from openapi/ and name the spec's hash."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "openapi" / "data-storage-audit.yaml"
GENERATED = ROOT / "src" / "kubernaut_audit" / "_generated" / "models.py"


def test_generated_code_up_to_date() -> None:
    """scripts/generate.py --check finds no drift between the spec and the committed code."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=110,
    )
    assert result.returncode == 0, result.stderr


def test_header_names_spec_hash() -> None:
    """The generated header's spec-sha256 is the hash of the spec file as committed."""
    match = re.search(r"^# spec-sha256: ([0-9a-f]{64})$", GENERATED.read_text(), re.MULTILINE)
    assert match is not None, "generated file has no spec-sha256 header"
    assert match.group(1) == hashlib.sha256(SPEC.read_bytes()).hexdigest()


def test_header_says_do_not_edit() -> None:
    """Every generated file says it is generated and must not be edited."""
    for path in GENERATED.parent.glob("*.py"):
        assert "DO NOT EDIT" in path.read_text().splitlines()[0], path.name
