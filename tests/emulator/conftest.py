"""Fixtures for the emulator's tests: an in-process emulator and a raw httpx client on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from emulator_helpers import new_cid

from kubernaut_audit.emulator import Emulator


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator()
    yield emu
    emu.close()


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=emulator.transport(), base_url="http://data-storage"
    ) as http:
        yield http


@pytest.fixture
def cid() -> str:
    """A fresh correlation id."""
    return new_cid()
