"""A local Data Storage for tests and demos, and an imitation of the services' audit writer.

Install with the ``emulator`` extra (``kubernaut-audit[emulator]``).
"""

from ._emitter import AsyncBufferedEmitter, BufferedEmitter, EmittedRecord, EmitterCounters
from ._emulator import Emulator
from ._faults import Faults
from ._samples import make_event
from ._state import EmulatorStats

__all__ = [
    "AsyncBufferedEmitter",
    "BufferedEmitter",
    "EmittedRecord",
    "EmitterCounters",
    "Emulator",
    "EmulatorStats",
    "Faults",
    "make_event",
]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
