"""Imitations of the audit writers Kubernaut's services use, for tests, demos and benchmarks.

Two kinds, as in the field: :class:`AsyncBufferedEmitter` / :class:`BufferedEmitter` write on a
fixed ticker, a whole batch in one request (the Go services); :class:`AsyncSinceLastWriteEmitter`
/ :class:`SinceLastWriteEmitter` write once the interval has passed since their previous write,
one request per event (the Python service).

They need only the core install (httpx and anyio): no ``emulator`` extra. Point one at a real
Data Storage, at a served emulator, or at ``Emulator.transport()`` in process.

.. versionadded:: 0.2.0
"""

from ._records import EmittedRecord, EmitterCounters
from ._since_last_write import AsyncSinceLastWriteEmitter, SinceLastWriteEmitter
from ._ticker import AsyncBufferedEmitter, BufferedEmitter

__all__ = [
    "AsyncBufferedEmitter",
    "AsyncSinceLastWriteEmitter",
    "BufferedEmitter",
    "EmittedRecord",
    "EmitterCounters",
    "SinceLastWriteEmitter",
]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
