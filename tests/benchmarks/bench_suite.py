"""How long the example suite (tests/examples, 40 audit tests against a 2 s writer) takes, against
the goals of issue 11: written with ``audit.expect`` in the default mode, with
``--audit-window 64``, with ``-n 4``; and the same suite the old ways, ``time.sleep(5)`` and the
blocking waits of 0.1. Prints a table and a JSON line (with the machine's load average: the
machine may be shared).

Run: ``.venv/bin/python tests/benchmarks/bench_suite.py [--json PATH] [--skip-sleep]``
(the ``time.sleep(5)`` suite run sequentially takes about four minutes; ``--skip-sleep``
estimates it as 40 × 5 s instead).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = 40
SLEEP = 5.0


@dataclass
class Run:
    name: str
    baseline: str
    args: tuple[str, ...]
    wall_s: float = 0.0
    passed: int = 0
    failed: int = 0
    errors: int = 0
    estimated: bool = False


RUNS = [
    Run("expect, --audit-window 64", "", ("--audit-window", "64")),
    Run("expect, --audit-window 64, -n 4", "", ("--audit-window", "64", "-n", "4")),
    Run("expect, default mode", "", ()),
    Run("expect, default mode, -n 4", "", ("-n", "4")),
    Run("blocking waits (0.1)", "blocking", ()),
    Run("time.sleep(5)", "sleep", ()),
]


def measure(run: Run) -> None:
    env = {**os.environ, "KUBERNAUT_AUDIT_EXAMPLES_BASELINE": run.baseline}
    cmd = [sys.executable, "-m", "pytest", "tests/examples", "--audit-emulator", "-q", *run.args]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    run.wall_s = round(time.perf_counter() - started, 2)
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-300:]
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|errors?)", tail)}
    run.passed = counts.get("passed", 0)
    run.failed = counts.get("failed", 0)
    run.errors = counts.get("error", 0) + counts.get("errors", 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--skip-sleep",
        action="store_true",
        help=f"estimate the time.sleep(5) suite as {TESTS} × {SLEEP:g} s instead of running it",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    for run in RUNS:
        if run.baseline == "sleep" and args.skip_sleep:
            run.wall_s, run.passed, run.estimated = TESTS * SLEEP, TESTS, True
            continue
        measure(run)
    load_after = os.getloadavg()
    by = {r.name: r.wall_s for r in RUNS}
    window, window_n4 = by["expect, --audit-window 64"], by["expect, --audit-window 64, -n 4"]
    default, blocking = by["expect, default mode"], by["blocking waits (0.1)"]
    sleep = by["time.sleep(5)"]
    vs_sleep, vs_blocking, default_gain = sleep / window, blocking / window, blocking / default
    goals = [
        ("--audit-window 64, sequential", f"{window:.1f} s", "<= 15 s", window <= 15),
        ("  vs time.sleep(5)", f"{vs_sleep:.1f}x faster", ">= 15x", vs_sleep >= 15),
        ("  vs blocking waits", f"{vs_blocking:.1f}x faster", ">= 7x", vs_blocking >= 7),
        ("--audit-window 64, -n 4", f"{window_n4:.1f} s", "<= 12 s", window_n4 <= 12),
        ("default mode vs blocking", f"{default_gain:.2f}x faster", ">= 1x", default_gain >= 1),
    ]
    print(f"{'run':<36}{'wall s':>9}{'passed':>8}{'failed':>8}{'errors':>8}")
    for r in RUNS:
        mark = " (estimated)" if r.estimated else ""
        print(f"{r.name:<36}{r.wall_s:>9.2f}{r.passed:>8}{r.failed:>8}{r.errors:>8}{mark}")
    print(f"\n{'goal':<36}{'measured':>16}  {'target':<9}met")
    for name, measured, target, met in goals:
        print(f"{name:<36}{measured:>16}  {target:<9}{'yes' if met else 'NO'}")
    print(f"\nload average before {load_before}, after {load_after} (2 cores)")
    result = {
        "benchmark": "suite",
        "tests": TESTS,
        "writer_flush_interval_s": 2.0,
        "runs": [asdict(r) for r in RUNS],
        "goals": [
            {"goal": n.strip(), "measured": m, "target": t, "met": ok} for n, m, t, ok in goals
        ],
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
