"""Remediation-pipeline tests: several services' events on one correlation id."""

from __future__ import annotations

import pytest
from fake_service import Service

from kubernaut_audit.pytest_plugin import AuditHelper

PIPELINE = [
    "signalprocessing.signal.processed",
    "aianalysis.phase.transition",
    "workflowexecution.workflow.started",
    "orchestrator.lifecycle.completed",
]


@pytest.mark.parametrize(
    "stages",
    [PIPELINE[:1], PIPELINE[:2], PIPELINE[:3], PIPELINE, PIPELINE[1:], PIPELINE[2:]],
)
def test_pipeline_stages_are_audited(
    audit: AuditHelper, service: Service, stages: list[str]
) -> None:
    """Every stage the remediation reached is audited at least once."""
    service.handle(audit.correlation_id, *stages)
    audit.expect(event_types=stages)


@pytest.mark.parametrize("transitions", [1, 2, 3, 5])
def test_phase_transitions_are_counted(
    audit: AuditHelper, service: Service, transitions: int
) -> None:
    """Each AI-analysis phase transition is one event: exactly that many, then quiet."""
    service.handle(audit.correlation_id, *["aianalysis.phase.transition"] * transitions)
    audit.expect(event_types={"aianalysis.phase.transition": transitions}, settle=True)


@pytest.mark.parametrize("outcome", ["success", "failure"])
def test_outcomes_are_recorded(audit: AuditHelper, service: Service, outcome: str) -> None:
    """The orchestrator records how the remediation ended."""
    service.handle(audit.correlation_id, "orchestrator.lifecycle.completed", outcome=outcome)
    audit.expect(event_type="orchestrator.lifecycle.completed", event_outcome=outcome)


def test_notification_payload_names_the_remediation(audit: AuditHelper, service: Service) -> None:
    """The notification event's payload is filtered with a predicate."""
    service.handle(audit.correlation_id, "notification.message.sent")
    audit.expect(where=lambda e: e.event_data["event_type"] == "notification.message.sent")


@pytest.mark.parametrize("stage", PIPELINE[:3])
def test_untriggered_services_stay_silent(audit: AuditHelper, service: Service, stage: str) -> None:
    """Only the triggered stage is audited: the later ones stay absent."""
    service.handle(audit.correlation_id, stage)
    audit.expect(event_type=stage)
    audit.expect_none(event_type="notification.message.sent")
