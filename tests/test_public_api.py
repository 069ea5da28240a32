"""The public surface: one sorted __all__, every name importable and labelled kubernaut_audit."""

from __future__ import annotations

import subprocess
import sys

import pytest

import kubernaut_audit


def test_all_sorted() -> None:
    """__all__ is sorted."""
    assert kubernaut_audit.__all__ == sorted(kubernaut_audit.__all__)


def test_all_unique() -> None:
    """__all__ names each object once."""
    assert len(set(kubernaut_audit.__all__)) == len(kubernaut_audit.__all__)


@pytest.mark.parametrize("name", kubernaut_audit.__all__)
def test_name_importable(name: str) -> None:
    """Every name in __all__ is an attribute of the package."""
    assert getattr(kubernaut_audit, name) is not None


@pytest.mark.parametrize("name", kubernaut_audit.__all__)
def test_name_presents_as_package(name: str) -> None:
    """Every public object says it lives in kubernaut_audit, not a private module."""
    assert getattr(kubernaut_audit, name).__module__ == "kubernaut_audit"


def test_version_available() -> None:
    """__version__ comes from the installed distribution."""
    assert isinstance(kubernaut_audit.__version__, str)
    assert kubernaut_audit.__version__


def test_unknown_attribute_raises() -> None:
    """An unknown attribute raises AttributeError."""
    with pytest.raises(AttributeError):
        _ = kubernaut_audit.no_such_thing


def test_import_does_not_import_pytest() -> None:
    """Importing kubernaut_audit pulls in neither pytest nor the plugin."""
    code = (
        "import sys, kubernaut_audit, kubernaut_audit.models;"
        "bad = [m for m in ('pytest', '_pytest', 'kubernaut_audit.pytest_plugin') "
        "if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("DataStorageConnectionError", "TransportConnectionError"),
        ("DataStorageTimeoutError", "TransportTimeoutError"),
        ("AuditEvents", "WaitResult"),
    ],
)
def test_renamed_names_warn_and_give_the_new_object(old: str, new: str) -> None:
    """A deprecated name still works for one release: it warns and is the renamed object."""
    with pytest.warns(DeprecationWarning, match=f"{old} is deprecated.*{new}"):
        obj = getattr(kubernaut_audit, old)
    assert obj is getattr(kubernaut_audit, new)


@pytest.mark.parametrize("old", ["DataStorageConnectionError", "DataStorageTimeoutError"])
def test_renamed_names_are_not_in_all(old: str) -> None:
    """Deprecated names are not exported by a star import."""
    assert old not in kubernaut_audit.__all__


def test_transport_errors_say_what_they_are() -> None:
    """Connection and timeout errors are TransportErrors, not DataStorageErrors."""
    for cls in (kubernaut_audit.TransportConnectionError, kubernaut_audit.TransportTimeoutError):
        assert issubclass(cls, kubernaut_audit.TransportError)
        assert not issubclass(cls, kubernaut_audit.DataStorageError)
