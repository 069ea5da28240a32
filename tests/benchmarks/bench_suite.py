"""How long the example suite (tests/examples, 40 audit tests) takes: with the SDK and with
``time.sleep(5)``, sequentially and with ``-n 4``. Prints a table and a JSON line.

Run: ``.venv/bin/python tests/benchmarks/bench_suite.py [--json PATH] [--skip-sleep-sequential]``
(the sleep-based suite run sequentially takes about four minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*, sleep: bool, workers: int) -> dict[str, float | int | str]:
    env = {**os.environ, "KUBERNAUT_AUDIT_EXAMPLES_SLEEP": "1" if sleep else "0"}
    cmd = [sys.executable, "-m", "pytest", "tests/examples", "--audit-emulator", "-q"]
    cmd += ["-p", "no:cacheprovider"]
    if workers > 1:
        cmd += ["-n", str(workers)]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    tail = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-200:]
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|error|errors)", tail)}
    return {
        "suite": "time.sleep(5)" if sleep else "kubernaut-audit",
        "workers": workers,
        "wall_s": round(wall, 2),
        "passed": counts.get("passed", 0),
        "failed": counts.get("failed", 0),
        "errors": counts.get("error", 0) + counts.get("errors", 0),
        "summary": tail,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--skip-sleep-sequential",
        action="store_true",
        help="estimate the sequential sleep suite as 4x its -n 4 time instead of running it",
    )
    args = parser.parse_args()
    rows = [run(sleep=False, workers=1), run(sleep=False, workers=4), run(sleep=True, workers=4)]
    if not args.skip_sleep_sequential:
        rows.append(run(sleep=True, workers=1))
    by = {(r["suite"], r["workers"]): float(r["wall_s"]) for r in rows}
    ours_seq, ours_par = by[("kubernaut-audit", 1)], by[("kubernaut-audit", 4)]
    sleep_par = by[("time.sleep(5)", 4)]
    sleep_seq = by.get(("time.sleep(5)", 1), sleep_par * 4)
    print(f"{'suite':<18}{'workers':>8}{'wall s':>9}{'passed':>8}{'failed':>8}{'errors':>8}")
    for r in rows:
        print(
            f"{r['suite']!s:<18}{r['workers']:>8}{r['wall_s']:>9}"
            f"{r['passed']:>8}{r['failed']:>8}{r['errors']:>8}"
        )
    ratios = {
        "parallel_speedup": round(ours_seq / ours_par, 2),
        "sequential_vs_sleep": round(sleep_seq / ours_seq, 2),
        "parallel_vs_sleep": round(sleep_par / ours_par, 2),
    }
    print(
        f"\nparallel speedup (goal >= 3x): {ratios['parallel_speedup']}x; "
        f"vs time.sleep(5) (goal >= 10x): sequential {ratios['sequential_vs_sleep']}x, "
        f"-n 4 {ratios['parallel_vs_sleep']}x"
    )
    result = {"benchmark": "suite", "runs": rows, **ratios}
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
