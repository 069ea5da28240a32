"""The emulator package's public surface and its sample events."""

from __future__ import annotations

import pytest

import kubernaut_audit.emulator as emulator_package
from kubernaut_audit._generated.models import AuditEventRequest
from kubernaut_audit.emulator import make_event

COMMON_TYPES = [
    "gateway.signal.received",
    "signalprocessing.signal.processed",
    "aianalysis.phase.transition",
    "workflowexecution.workflow.started",
    "workflowexecution.workflow.completed",
    "orchestrator.lifecycle.started",
    "orchestrator.lifecycle.completed",
    "notification.message.sent",
    "some.unknown.type",
]


def test_all_is_sorted_and_public() -> None:
    """__all__ is sorted, and every name is defined in the package namespace."""
    names = emulator_package.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(emulator_package, name).__module__ == "kubernaut_audit.emulator"


@pytest.mark.parametrize("event_type", COMMON_TYPES)
def test_make_event_builds_valid_requests(event_type: str) -> None:
    """make_event returns an event the request model accepts, its data typed alike."""
    event = make_event("rr-1", event_type)
    model = AuditEventRequest.model_validate(event)
    assert model.event_data.event_type == event_type
    assert len(event["event_data"]) > 1


def test_make_event_overrides() -> None:
    """Keyword arguments replace envelope fields."""
    event = make_event("rr-1", event_outcome="failure", severity=None)
    assert event["event_outcome"] == "failure"
    assert event["severity"] is None
