"""Run one step of ``make test``, timing it: ``timed.py LABEL COMMAND...``.

Each step's wall time and CPU time (its processes' user + system) is appended to
``.make-times``; ``timed.py --report`` prints them all with the load average, so that
``make test`` ends with its own timing breakdown. On a machine shared with other work the wall
time grows with the load; the CPU time does not, and half of it is what 2 idle cores need.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

TIMES = Path(".make-times")


def report() -> int:
    lines = TIMES.read_text().splitlines() if TIMES.exists() else []
    rows = [line.split("\t") for line in lines]
    print("\nmake test, time per step:             wall      CPU")
    for label, wall, cpu in rows:
        print(f"  {label:<32} {float(wall):7.1f} s {float(cpu):7.1f} s")
    wall_total = sum(float(wall) for _, wall, _ in rows)
    cpu_total = sum(float(cpu) for _, _, cpu in rows)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"  {'total':<32} {wall_total:7.1f} s {cpu_total:7.1f} s   (load average: {load})")
    return 0


def main(argv: list[str]) -> int:
    if argv == ["--report"]:
        return report()
    label, *command = argv
    started = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    code = subprocess.call(command)
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    with TIMES.open("a") as out:
        out.write(f"{label}\t{elapsed:.1f}\t{cpu:.1f}\n")
    if code:
        print(f"make test: step {label!r} failed after {elapsed:.1f} s", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
