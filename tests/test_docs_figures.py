"""The documentation's pictures are what scripts/docs_figures.py draws from the committed data."""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _figures() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_figures", ROOT / "scripts/docs_figures.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FIGURES = _figures()


@pytest.mark.parametrize("name", sorted(FIGURES.FIGURE_KINDS))
def test_committed_figure_is_drawn_from_committed_data(name: str) -> None:
    """The SVG in docs/figures/ is exactly what `render` draws from the JSON beside it."""
    svg = ROOT / "docs" / "figures" / f"{name}.svg"
    drawn = FIGURES.render_all()[svg]
    assert svg.read_text(encoding="utf-8") == drawn, (
        f"{svg} is stale: run `.venv/bin/python scripts/docs_figures.py render`"
    )


@pytest.mark.parametrize("name", sorted(FIGURES.FIGURE_KINDS))
def test_every_figure_is_shown_in_the_docs(name: str) -> None:
    """Each figure is used by a page of the site."""
    pages = [p.read_text(encoding="utf-8") for p in (ROOT / "docs").rglob("*.md")]
    assert any(f"figures/{name}.svg" in page for page in pages)


def test_wait_timeline_data_is_a_recorded_run() -> None:
    """The wait timeline's data holds rounds in which every event was written before noticed."""
    data = json.loads((ROOT / "docs/figures/wait-timeline.json").read_text(encoding="utf-8"))
    assert data["rounds"]
    for r in data["rounds"]:
        assert max(r["emitted"]) <= min(r["visible"]) <= max(r["visible"]) <= r["noticed"]
        assert r["polls"][0] <= r["noticed"]


def test_api_reference_has_a_page_per_public_module() -> None:
    """Every public module (a package module without a leading underscore) has a reference page
    rendering it with mkdocstrings, and the docs' griffe extension knows it."""
    package = ROOT / "src" / "kubernaut_audit"
    public = {"kubernaut_audit"} | {
        f"kubernaut_audit.{p.stem if p.suffix else p.name}"
        for p in package.iterdir()
        if not p.name.startswith("_")
        and (p.suffix == ".py" or (p / "__init__.py").exists())
        and p.name != "py.typed"
    }
    pages = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs/reference").glob("*.md"))
    spec = importlib.util.spec_from_file_location("docs_griffe", ROOT / "scripts/docs_griffe.py")
    assert spec is not None
    assert spec.loader is not None
    griffe_ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(griffe_ext)
    assert set(griffe_ext.PUBLIC_MODULES) == public
    for module in public:
        assert f"::: {module}\n" in pages, f"no reference page renders {module}"


def test_verdict_flow_data_is_a_recorded_run() -> None:
    """The verdict flow's data holds both runs of the same tests, each verdict after its body,
    in collection order, and the windowed run's bodies not waiting for earlier verdicts."""
    data = json.loads((ROOT / "docs/figures/verdict-flow.json").read_text(encoding="utf-8"))
    runs = {run["mode"]: run["tests"] for run in data["runs"]}
    assert set(runs) == {"default", "windowed"}
    for tests in runs.values():
        assert len(tests) == data["tests"]
        assert all(t["body_end"] <= t["reported"] for t in tests)
        reported = [t["reported"] for t in tests]
        assert reported == sorted(reported)
    windowed = runs["windowed"]
    assert any(
        later["body_start"] < earlier["reported"] for earlier, later in itertools.pairwise(windowed)
    )
