"""Notification tests: absence and exact counts."""

from __future__ import annotations

import pytest
from fake_service import Service

from kubernaut_audit.pytest_plugin import AuditHelper


@pytest.mark.parametrize("channel", ["slack", "email", "pagerduty", "teams"])
def test_one_message_per_channel(audit: AuditHelper, service: Service, channel: str) -> None:
    """Sending to a channel audits one notification.message.sent."""
    service.handle(audit.correlation_id, "notification.message.sent")
    audit.expect(event_type="notification.message.sent", count=1)


def test_nothing_is_sent_without_a_trigger(audit: AuditHelper) -> None:
    """With no request at all, no audit event appears."""
    audit.expect_none()


@pytest.mark.parametrize("failures", [1, 2, 3])
def test_escalation_follows_failed_deliveries(
    audit: AuditHelper, service: Service, failures: int
) -> None:
    """Each failed delivery is audited, then one escalation; nothing more."""
    service.handle(audit.correlation_id, *["notification.message.failed"] * failures)
    service.handle(audit.correlation_id, "notification.message.escalated")
    expected = {"notification.message.failed": failures, "notification.message.escalated": 1}
    audit.expect(event_types=expected, settle=True)


def test_acknowledgement_is_audited(audit: AuditHelper, service: Service) -> None:
    """An acknowledged message is audited with its own type."""
    service.handle(audit.correlation_id, "notification.message.acknowledged")
    audit.expect(event_type="notification.message.acknowledged")
