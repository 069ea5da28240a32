"""The emitters' public home: its surface, its independence from the emulator extra, and the
deprecated names the emulator package still answers to."""

from __future__ import annotations

import pytest
from without_modules import EMULATOR_EXTRA, run_without

import kubernaut_audit.emitters as emitters_package
import kubernaut_audit.emulator as emulator_package

MOVED = ["AsyncBufferedEmitter", "BufferedEmitter", "EmittedRecord", "EmitterCounters"]
NEW = ["AsyncSinceLastWriteEmitter", "SinceLastWriteEmitter"]


def test_all_is_sorted_and_presents_as_the_package() -> None:
    """__all__ is sorted, and every name says it lives in kubernaut_audit.emitters."""
    names = emitters_package.__all__
    assert names == sorted(names) == sorted(MOVED + NEW)
    for name in names:
        assert getattr(emitters_package, name).__module__ == "kubernaut_audit.emitters"


def test_emitters_import_without_the_emulator_extra() -> None:
    """The emitters import and run on the core install: starlette and uvicorn never load."""
    result = run_without(
        EMULATOR_EXTRA,
        """
        import anyio, httpx
        from kubernaut_audit.emitters import AsyncBufferedEmitter, BufferedEmitter

        def answer(request):
            return httpx.Response(201, json={"event_ids": ["e-1"]})

        async def main():
            transport = httpx.MockTransport(answer)
            async with AsyncBufferedEmitter(transport=transport, phase=0.0) as emitter:
                emitter.emit({"correlation_id": "rr-1", "event_type": "a.b.c"})
            return emitter.records

        [record] = anyio.run(main)
        assert record.event_id == "e-1", record
        BufferedEmitter("http://127.0.0.1:9")
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("starlette", "uvicorn"))
        print("loaded:", loaded)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "loaded: []"


def test_the_finder_does_refuse_the_extra() -> None:
    """The no-extra harness is real: importing the emulator under it fails on starlette."""
    result = run_without(EMULATOR_EXTRA, "import kubernaut_audit.emulator")
    assert result.returncode != 0
    assert "starlette" in result.stderr


@pytest.mark.parametrize("name", MOVED)
def test_old_emulator_names_warn_and_resolve(name: str) -> None:
    """The old emulator names still resolve, warning with the new home."""
    with pytest.deprecated_call(match=r"import it from kubernaut_audit\.emitters"):
        moved = getattr(emulator_package, name)
    assert moved is getattr(emitters_package, name)


def test_old_names_are_not_in_the_emulator_all() -> None:
    """A star import of the emulator does not trip the deprecation."""
    assert not set(MOVED) & set(emulator_package.__all__)


def test_unknown_emulator_attribute_raises() -> None:
    """Names the emulator never had still raise AttributeError."""
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = emulator_package.no_such_thing
