"""Run Python code in a fresh interpreter where some installed packages cannot be imported.

A meta-path finder at the front of ``sys.meta_path`` refuses them, as if an optional extra
were not installed.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterable

_PRELUDE = """\
import sys

class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _Refuse())
"""

EMULATOR_EXTRA = ("cryptography", "starlette", "uvicorn")


def run_without(
    modules: Iterable[str], code: str, *, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (dedented) with ``modules`` (top-level names) unimportable."""
    prelude = _PRELUDE.format(blocked=sorted(set(modules)))
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
