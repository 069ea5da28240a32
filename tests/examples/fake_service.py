"""A stand-in for a Kubernaut service under test: handling a request emits audit events."""

from __future__ import annotations

from kubernaut_audit.emitters import BufferedEmitter
from kubernaut_audit.emulator import make_event


class Service:
    """Emits audit events through a buffered writer, as the real services do (ADR-038)."""

    def __init__(self, emitter: BufferedEmitter) -> None:
        self._emitter = emitter

    def handle(self, correlation_id: str, *event_types: str, outcome: str = "success") -> None:
        for event_type in event_types:
            self._emitter.emit(make_event(correlation_id, event_type, event_outcome=outcome))
