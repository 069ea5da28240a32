"""Fixtures for the emitters' tests: an in-process emulator to write to, fresh correlation ids."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from kubernaut_audit.emulator import Emulator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator()
    yield emu
    emu.close()


@pytest.fixture
def cid() -> str:
    """A fresh correlation id."""
    return f"rr-{uuid.uuid4().hex[:12]}"
