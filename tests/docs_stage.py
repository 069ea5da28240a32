"""The stage the documentation's examples run on: stand-ins for "your code under test".

The examples in ``docs/`` and the README call a few functions that stand for the service a
reader's test triggers (``trigger_gateway``, ``send_alert``, ``start_remediation``). When the docs
tests run an example, these are the functions it calls: each emits the audit events the real
service would, through a buffered writer (``BufferedEmitter``, flushing every
``FLUSH_INTERVAL`` seconds) posting to ``$DATA_STORAGE_URL``, so every example waits for events
exactly as it would against a cluster. ``docs/about.md`` says so to the reader.

The stage also holds the data set the console examples query: the audit trail of one
remediation, ``rr-2025-001`` (see :func:`seed`).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from kubernaut_audit.emitters import BufferedEmitter
from kubernaut_audit.emulator import Emulator, make_event

__all__ = ["send_alert", "start_remediation", "trigger_gateway"]

#: The stand-in services' writer flushes this often (seconds); the docs tests tell the SDK so
#: through ``KUBERNAUT_AUDIT_FLUSH_INTERVAL``.
FLUSH_INTERVAL = 0.5
#: The remediation whose audit trail the console examples query.
SEEDED_REMEDIATION = "rr-2025-001"
SEEDED_EVENTS = (
    "gateway.signal.received",
    "gateway.crd.created",
    "signalprocessing.signal.processed",
    "aianalysis.phase.transition",
    "workflowexecution.workflow.started",
    "orchestrator.lifecycle.completed",
)

_lock = threading.Lock()
_writers: dict[str, BufferedEmitter] = {}


def _writer() -> BufferedEmitter:
    url = os.environ["DATA_STORAGE_URL"]
    with _lock:
        writer = _writers.get(url)
        if writer is None:
            writer = BufferedEmitter(url, flush_interval=FLUSH_INTERVAL)
            writer.start()
            _writers[url] = writer
        return writer


def _emit(correlation_id: str, event_type: str, **overrides: Any) -> None:
    _writer().emit(make_event(correlation_id, event_type, **overrides))


def _gateway(correlation_id: str) -> None:
    received = make_event(correlation_id, "gateway.signal.received")
    received["event_data"]["signal_name"] = "HighMemoryUsage"
    _writer().emit(received)
    _emit(correlation_id, "gateway.crd.created")


def trigger_gateway(remediation_id: str) -> None:
    """Stand-in: the Gateway receives an alert (signal ``HighMemoryUsage``) and creates the
    RemediationRequest: ``gateway.signal.received`` then ``gateway.crd.created``."""
    _gateway(remediation_id)


def send_alert(*, correlation_id: str) -> None:
    """Stand-in: the same two Gateway events as :func:`trigger_gateway`."""
    _gateway(correlation_id)


async def start_remediation(correlation_id: str) -> None:
    """Stand-in: the orchestrator runs a remediation to the end:
    ``orchestrator.lifecycle.created`` then ``orchestrator.lifecycle.completed``."""
    _emit(correlation_id, "orchestrator.lifecycle.created")
    _emit(correlation_id, "orchestrator.lifecycle.completed")


def seed(emulator: Emulator) -> None:
    """Store the audit trail of :data:`SEEDED_REMEDIATION` (one event of each seeded type)."""
    emulator.insert_events(make_event(SEEDED_REMEDIATION, t) for t in SEEDED_EVENTS)


def close() -> None:
    """Drain and stop the stand-ins' writers."""
    with _lock:
        writers = list(_writers.values())
        _writers.clear()
    for writer in writers:
        writer.close()
