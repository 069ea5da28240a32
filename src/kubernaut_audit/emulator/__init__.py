"""A local Data Storage for tests and demos.

Install with the ``emulator`` extra (``kubernaut-audit[emulator]``). The buffered emitters that
used to live here are in :mod:`kubernaut_audit.emitters`, which needs no extra.
"""

import warnings
from typing import Any

from kubernaut_audit import emitters as _emitters

from ._auth import TokenUser
from ._emulator import Emulator
from ._faults import Faults
from ._samples import make_event
from ._state import EmulatorStats

__all__ = [
    "Emulator",
    "EmulatorStats",
    "Faults",
    "TokenUser",
    "make_event",
]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name

_MOVED_TO_EMITTERS = frozenset(
    {"AsyncBufferedEmitter", "BufferedEmitter", "EmittedRecord", "EmitterCounters"}
)


def __getattr__(name: str) -> Any:
    # Deprecated in 0.2.0, removed in 0.3.0: the emitters need no emulator extra.
    if name in _MOVED_TO_EMITTERS:
        warnings.warn(
            f"kubernaut_audit.emulator.{name} is deprecated; "
            f"import it from kubernaut_audit.emitters",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(_emitters, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
