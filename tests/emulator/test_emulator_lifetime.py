"""An emulator left to the garbage collector releases its database like one closed."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path

from emulator_helpers import event, new_cid

from kubernaut_audit.emulator import Emulator


def test_dropped_emulator_closes_its_database(tmp_path: Path) -> None:
    """Collecting an unclosed emulator closes its SQLite file, with no ResourceWarning (3.13+)."""
    db = tmp_path / "audit.db"
    emulator = Emulator(db=str(db))
    emulator.insert_events([event(new_cid())])
    assert db.with_name("audit.db-wal").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        del emulator
        gc.collect()
    assert not db.with_name("audit.db-wal").exists()
