"""Check the type completeness of the public API with ``basedpyright --verifytypes``.

Prints the score and fails below 100 %, naming each symbol whose type is unknown or ambiguous.
Types imported from other packages are ignored (``--ignoreexternal``): typeshed's ``numbers``
and parts of pydantic are themselves incomplete, and they are not ours to fix.

pyright resolves the package through the ``python`` first on PATH, so this script puts the
interpreter running it (the project's venv) first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PACKAGE = "kubernaut_audit"


def main() -> int:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [
        str(bin_dir / "basedpyright"),
        "--verifytypes",
        PACKAGE,
        "--ignoreexternal",
        "--outputjson",
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    try:
        report = json.loads(result.stdout)["typeCompleteness"]
    except (ValueError, KeyError):
        print(result.stdout + result.stderr, file=sys.stderr)
        print(f"verifytypes: no report from {' '.join(command)}", file=sys.stderr)
        return 1
    counts = report["exportedSymbolCounts"]
    known = counts["withKnownType"]
    total = known + counts["withAmbiguousType"] + counts["withUnknownType"]
    score = 100 * report["completenessScore"]
    print(f"verifytypes {PACKAGE}: {score:.1f} % ({known}/{total} exported symbols fully typed)")
    if report.get("pyTypedPath") is None or total == 0:
        print(f"verifytypes: {PACKAGE} was not found with its py.typed", file=sys.stderr)
        return 1
    if known == total:
        return 0
    for symbol in report["symbols"]:
        if symbol.get("isExported") and (
            not symbol.get("isTypeKnown") or symbol.get("isTypeAmbiguous")
        ):
            print(f"  not fully typed: {symbol['name']}", file=sys.stderr)
            for diagnostic in symbol.get("diagnostics", []):
                print(f"    {diagnostic['message']}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
