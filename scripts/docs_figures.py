"""The documentation's pictures: recorded from real runs, drawn as plain SVG.

``record`` runs the real thing and writes what happened as JSON into ``docs/figures/``:

* ``wait-timeline.json``: rounds of a test-like loop against the emulator (in-process), each
  emitting a remediation's events through the buffered ticker writer (``AsyncBufferedEmitter``)
  and waiting for them with ``wait_for_audit_events``; per round, when the events were emitted,
  when the writer's flush stored them, every poll of the wait, and when the wait returned.
* ``verdict-flow.json``: one small suite of audit tests (``audit.expect`` after a buffered
  writer's emits) run twice by pytest in a subprocess, in the default mode and with
  ``--audit-window``; per test, when its body ran and when its verdict was reported (a recording
  conftest hooks ``pytest_pyfunc_call`` and ``pytest_runtest_logreport``).

``render`` draws each JSON file as the SVG beside it; it is deterministic, and the test suite
checks that the committed SVGs are what ``render`` draws from the committed JSON
(``tests/test_docs_figures.py``). Re-record after a change that moves the pictures:

    .venv/bin/python scripts/docs_figures.py record   # about 45 s of real time
    .venv/bin/python scripts/docs_figures.py render
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

FIGURES = Path(__file__).resolve().parent.parent / "docs" / "figures"

PIPELINE = (
    "gateway.signal.received",
    "signalprocessing.signal.processed",
    "aianalysis.phase.transition",
    "workflowexecution.workflow.started",
    "orchestrator.lifecycle.completed",
    "notification.message.sent",
)


# -- recording ------------------------------------------------------------------------------------


def record_wait_timeline(rounds: int = 6, flush_interval: float = 2.0) -> dict[str, Any]:
    """Run ``rounds`` emit-then-wait rounds against one long-lived ticker writer."""
    import random

    import anyio

    from kubernaut_audit import AsyncAuditClient, PollRecord
    from kubernaut_audit.emitters import AsyncBufferedEmitter
    from kubernaut_audit.emulator import Emulator, make_event

    rng = random.Random(14)
    out: dict[str, Any] = {"writer": "ticker", "flush_interval": flush_interval, "rounds": []}

    async def run() -> None:
        emulator = Emulator()
        transport = emulator.transport()
        async with (
            AsyncAuditClient(transport=transport, flush_interval=flush_interval) as client,
            AsyncBufferedEmitter(transport=transport, flush_interval=flush_interval) as writer,
        ):
            started = time.monotonic()
            for _ in range(rounds):
                # The test's own work before it triggers the service: anywhere in the cycle.
                await anyio.sleep(rng.uniform(0, flush_interval))
                cid = f"fig-{uuid.uuid4().hex[:8]}"
                polls: list[PollRecord] = []
                t0 = time.monotonic()
                for event_type in PIPELINE:
                    writer.emit(make_event(cid, event_type))
                events = await client.wait_for_audit_events(
                    cid, event_types=list(PIPELINE), on_poll=polls.append
                )
                noticed = time.monotonic() - t0
                mine = [r for r in writer.records if r.correlation_id == cid]
                ticks_from = (t0 - started - writer.phase) % flush_interval
                out["rounds"].append(
                    {
                        "emitted": [round(r.emitted_at - t0, 4) for r in mine],
                        "visible": [round((r.visible_at or t0) - t0, 4) for r in mine],
                        "polls": [round(p.at, 4) for p in polls],
                        "noticed": round(noticed, 4),
                        "first_tick": round(flush_interval - ticks_from, 4),
                        "events": len(events),
                    }
                )
        emulator.close()

    anyio.run(run)
    out["recorded"] = _provenance()
    return out


_VERDICT_TESTS = """\
import time

import pytest

from kubernaut_audit.emitters import BufferedEmitter
from kubernaut_audit.emulator import make_event
from kubernaut_audit.pytest_plugin import AuditHelper


@pytest.fixture(scope="session")
def service(data_storage_url: str):
    with BufferedEmitter(data_storage_url, flush_interval=FLUSH) as writer:
        yield writer


@pytest.mark.parametrize("n", range(TESTS))
def test_remediation(audit: AuditHelper, service: BufferedEmitter, n: int) -> None:
    service.emit(make_event(audit.correlation_id, "gateway.signal.received"))
    service.emit(make_event(audit.correlation_id, "gateway.crd.created"))
    time.sleep(WORK)  # the rest of the test's own work
    audit.expect(event_types=["gateway.signal.received", "gateway.crd.created"])
"""

_VERDICT_RECORDER = """\
import json
import os
import time

import pytest

T0 = time.monotonic()
SEEN = {}


def _now():
    return round(time.monotonic() - T0, 4)


@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    row = SEEN.setdefault(pyfuncitem.nodeid, {})
    row["body_start"] = _now()
    yield
    row["body_end"] = _now()


def pytest_runtest_logreport(report):
    if report.when == "call":
        SEEN.setdefault(report.nodeid, {}).update(reported=_now(), outcome=report.outcome)


def pytest_sessionfinish(session):
    with open(os.environ["DOCS_FIGURE_OUT"], "w") as out:
        json.dump({"finished": _now(), "tests": SEEN}, out)
"""


def record_verdict_flow(
    tests: int = 6, window: int = 4, flush_interval: float = 1.0, work: float = 0.25
) -> dict[str, Any]:
    """Run one small suite twice with pytest (default mode, then ``--audit-window``), recording
    when each test's body ran and when its verdict was reported."""
    import subprocess
    import tempfile

    out: dict[str, Any] = {
        "tests": tests,
        "window": window,
        "flush_interval": flush_interval,
        "work": work,
        "runs": [],
    }
    source = (
        _VERDICT_TESTS.replace("FLUSH", repr(flush_interval))
        .replace("TESTS", str(tests))
        .replace("WORK", repr(work))
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "test_suite.py").write_text(source, encoding="utf-8")
        (folder / "conftest.py").write_text(_VERDICT_RECORDER, encoding="utf-8")
        for mode, extra in (("default", []), ("windowed", [f"--audit-window={window}"])):
            result = folder / f"{mode}.json"
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "-p",
                    "no:randomly",
                    "--audit-emulator",
                    f"--audit-flush-interval={flush_interval}",
                    *extra,
                    "test_suite.py",
                ],
                cwd=folder,
                env={**os.environ, "DOCS_FIGURE_OUT": str(result)},
                capture_output=True,
                text=True,
                timeout=300,
            )
            if proc.returncode != 0:
                raise RuntimeError(f"the {mode} run failed:\n{proc.stdout}\n{proc.stderr}")
            seen = json.loads(result.read_text(encoding="utf-8"))
            rows = [seen["tests"][k] for k in sorted(seen["tests"], key=_param_index)]
            out["runs"].append({"mode": mode, "finished": seen["finished"], "tests": rows})
    out["recorded"] = _provenance()
    return out


def _param_index(nodeid: str) -> int:
    return int(nodeid.rsplit("[", 1)[1].rstrip("]"))


def _provenance() -> dict[str, Any]:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "python": platform.python_version(),
        "load_1min": round(load, 2) if load is not None else None,
    }


# -- drawing --------------------------------------------------------------------------------------

_STYLE = (
    "text{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:12px;fill:#37474f}"
    ".axis{stroke:#90a4ae;stroke-width:1}"
    ".tick{stroke:#cfd8dc;stroke-width:1;stroke-dasharray:3 3}"
    ".row{stroke:#eceff1;stroke-width:1}"
    ".poll{stroke:#78909c;stroke-width:1.5}"
    ".emit{fill:#fff;stroke:#ef6c00;stroke-width:2}"
    ".write{fill:#2e7d32}"
    ".notice{fill:#1565c0}"
    ".small{font-size:11px;fill:#607d8b}"
)


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def render_wait_timeline(data: dict[str, Any]) -> str:
    """Draw the recorded rounds: emitted, written (flush), polls, noticed, per round."""
    rounds: list[dict[str, Any]] = data["rounds"]
    interval: float = data["flush_interval"]
    horizon = max(max(r["noticed"], *r["visible"]) for r in rounds)
    span = interval * (int(horizon / interval) + 1)
    left, right, top, row_h = 92.0, 150.0, 58.0, 40.0
    width = 820.0
    plot = width - left - right
    height = top + row_h * len(rounds) + 46

    def x(t: float) -> float:
        return left + plot * t / span

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(width)} {_n(height)}" '
        f'width="{_n(width)}" height="{_n(height)}" role="img">',
        f"<title>A wait for buffered audit events ({data['writer']} writer, "
        f"{interval:g} s flush), recorded</title>",
        f"<style>{_STYLE}</style>",
        '<rect width="100%" height="100%" fill="#fff"/>',
    ]
    legend = [
        (f'<circle class="emit" cx="{_n(left)}" cy="20" r="5"/>', "emitted"),
        (f'<rect class="write" x="{_n(left + 110)}" y="12" width="4" height="16"/>', "written"),
        (
            _line("poll", left + 210, 13, left + 210, 27),
            "polls",
        ),
        (_diamond(left + 300, 20, "notice"), "noticed (wait returns)"),
    ]
    for i, (shape, label) in enumerate(legend):
        parts.append(shape)
        lx = left + [12, 122, 220, 312][i]
        parts.append(f'<text x="{_n(lx)}" y="24">{escape(label)}</text>')
    parts.append(
        f'<text class="small" x="{_n(left)}" y="44">dashed: the writer\'s ticks, every '
        f"{interval:g} s; right: lateness after the write, and polls</text>"
    )
    for i, r in enumerate(rounds):
        y = top + row_h * i + row_h / 2
        parts.append(f'<text x="8" y="{_n(y + 4)}">round {i + 1}</text>')
        parts.append(_line("row", left, y, left + plot, y))
        tick = r["first_tick"]
        while tick <= span:
            parts.append(_line("tick", x(tick), y - 14, x(tick), y + 14))
            tick += interval
        for p in r["polls"]:
            parts.append(_line("poll", x(p), y - 7, x(p), y + 7))
        for v in sorted(set(r["visible"])):
            parts.append(
                f'<rect class="write" x="{_n(x(v) - 2)}" y="{_n(y - 12)}" width="4" height="24"/>'
            )
        parts.append(f'<circle class="emit" cx="{_n(x(min(r["emitted"])))}" cy="{_n(y)}" r="5"/>')
        parts.append(_diamond(x(r["noticed"]), y, "notice"))
        late = (r["noticed"] - max(r["visible"])) * 1000
        parts.append(
            f'<text class="small" x="{_n(left + plot + 12)}" y="{_n(y + 4)}">'
            f"+{late:.0f} ms, {len(r['polls'])} polls</text>"
        )
    axis_y = top + row_h * len(rounds) + 8
    parts.append(_line("axis", left, axis_y, left + plot, axis_y))
    step = 0.5 if span <= 4 else 1.0
    t = 0.0
    while t <= span + 1e-9:
        parts.append(_line("axis", x(t), axis_y, x(t), axis_y + 5))
        parts.append(f'<text class="small" x="{_n(x(t) - 8)}" y="{_n(axis_y + 18)}">{t:g} s</text>')
        t += step
    parts.append(
        f'<text class="small" x="{_n(left)}" y="{_n(axis_y + 34)}">seconds since the round '
        f"emitted its {rounds[0]['events']} events; recorded {escape(data['recorded']['at'])}"
        "</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def render_verdict_flow(data: dict[str, Any]) -> str:
    """Draw both recorded runs: per test, its body and the moment its verdict was reported."""
    runs: list[dict[str, Any]] = data["runs"]
    starts = {run["mode"]: run["tests"][0]["body_start"] for run in runs}
    horizon = max(t["reported"] - starts[run["mode"]] for run in runs for t in run["tests"])
    span = float(int(horizon) + 1)
    left, right, top, row_h, gap = 150.0, 150.0, 58.0, 22.0, 40.0
    width = 820.0
    plot = width - left - right
    panel_h = [gap + row_h * len(run["tests"]) for run in runs]
    height = top + sum(panel_h) + 46

    def x(t: float) -> float:
        return left + plot * t / span

    titles = {
        "default": "default mode",
        "windowed": f"--audit-window {data['window']}",
    }
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_n(width)} {_n(height)}" '
        f'width="{_n(width)}" height="{_n(height)}" role="img">',
        f"<title>{data['tests']} audit tests run in the default mode and with windowed verdicts "
        f"({data['flush_interval']:g} s writer flush), recorded</title>",
        f"<style>{_STYLE}.body{{fill:#90caf9}}.late{{stroke:#1565c0;stroke-width:1.5;"
        "stroke-dasharray:4 3}.head{font-weight:600}</style>",
        '<rect width="100%" height="100%" fill="#fff"/>',
        f'<rect class="body" x="{_n(left)}" y="14" width="24" height="12"/>',
        f'<text x="{_n(left + 30)}" y="24">test body</text>',
        _line("late", left + 110, 20, left + 150, 20),
        f'<text x="{_n(left + 156)}" y="24">checks pending</text>',
        _diamond(left + 270, 20, "notice"),
        f'<text x="{_n(left + 282)}" y="24">verdict reported</text>',
        f'<text class="small" x="{_n(left)}" y="44">each test emits two events through a '
        f"{data['flush_interval']:g} s buffered writer, works {data['work']:g} s, then declares "
        "audit.expect(...)</text>",
    ]
    y0 = top
    for run, h in zip(runs, panel_h, strict=True):
        start = starts[run["mode"]]
        parts.append(
            f'<text class="head" x="8" y="{_n(y0 + 22)}">{escape(titles[run["mode"]])}</text>'
        )
        last = max(t["reported"] for t in run["tests"]) - start
        parts.append(
            f'<text class="small" x="{_n(left + plot + 12)}" y="{_n(y0 + 22)}">'
            f"last verdict at {last:.1f} s</text>"
        )
        for i, t in enumerate(run["tests"]):
            y = y0 + gap + row_h * i + row_h / 2 - 8
            b0, b1, rep = (t["body_start"] - start, t["body_end"] - start, t["reported"] - start)
            parts.append(f'<text class="small" x="24" y="{_n(y + 4)}">test {i + 1}</text>')
            parts.append(_line("row", left, y, left + plot, y))
            parts.append(
                f'<rect class="body" x="{_n(x(b0))}" y="{_n(y - 6)}" '
                f'width="{_n(max(x(b1) - x(b0), 1))}" height="12"/>'
            )
            if x(rep) - x(b1) > 7:
                parts.append(_line("late", x(b1), y, x(rep) - 6, y))
            parts.append(_diamond(x(rep), y, "notice"))
            parts.append(
                f'<text class="small" x="{_n(left + plot + 12)}" y="{_n(y + 4)}">'
                f"{t['outcome']} +{(rep - b1):.2f} s</text>"
            )
        y0 += h
    axis_y = y0 + 4
    parts.append(_line("axis", left, axis_y, left + plot, axis_y))
    t = 0.0
    while t <= span + 1e-9:
        parts.append(_line("axis", x(t), axis_y, x(t), axis_y + 5))
        parts.append(f'<text class="small" x="{_n(x(t) - 8)}" y="{_n(axis_y + 18)}">{t:g} s</text>')
        t += 0.5 if span <= 5 else 1.0
    parts.append(
        f'<text class="small" x="{_n(left)}" y="{_n(axis_y + 34)}">seconds since the first '
        f"test started; recorded {escape(data['recorded']['at'])}</text>"
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _line(cls: str, x1: float, y1: float, x2: float, y2: float) -> str:
    return f'<line class="{cls}" x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}"/>'


def _diamond(cx: float, cy: float, cls: str) -> str:
    pts = f"{_n(cx)},{_n(cy - 6)} {_n(cx + 6)},{_n(cy)} {_n(cx)},{_n(cy + 6)} {_n(cx - 6)},{_n(cy)}"
    return f'<polygon class="{cls}" points="{pts}"/>'


#: figure name -> (recorder, renderer)
FIGURE_KINDS: dict[str, tuple[Callable[[], dict[str, Any]], Callable[[dict[str, Any]], str]]] = {
    "wait-timeline": (record_wait_timeline, render_wait_timeline),
    "verdict-flow": (record_verdict_flow, render_verdict_flow),
}


def render_all(folder: Path = FIGURES) -> dict[Path, str]:
    """What ``render`` writes: each figure's SVG drawn from its committed JSON."""
    out: dict[Path, str] = {}
    for name, (_, render) in FIGURE_KINDS.items():
        data = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        out[folder / f"{name}.svg"] = render(data)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["record", "render"])
    parser.add_argument("--only", help="one figure name")
    args = parser.parse_args(argv)
    FIGURES.mkdir(parents=True, exist_ok=True)
    if args.command == "record":
        for name, (recorder, _) in FIGURE_KINDS.items():
            if args.only and name != args.only:
                continue
            data = recorder()
            path = FIGURES / f"{name}.json"
            path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            print(f"recorded {path}")
    for path, svg in render_all().items():
        path.write_text(svg, encoding="utf-8")
        print(f"drew {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
