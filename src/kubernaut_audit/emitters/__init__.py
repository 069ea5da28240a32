"""Imitations of the audit writers Kubernaut's services use, for tests, demos and benchmarks.

They need only the core install (httpx and anyio): no ``emulator`` extra. Point one at a real
Data Storage, at a served emulator, or at ``Emulator.transport()`` in process.

.. versionadded:: 0.2.0
"""

from ._records import EmittedRecord, EmitterCounters
from ._ticker import AsyncBufferedEmitter, BufferedEmitter

__all__ = [
    "AsyncBufferedEmitter",
    "BufferedEmitter",
    "EmittedRecord",
    "EmitterCounters",
]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
