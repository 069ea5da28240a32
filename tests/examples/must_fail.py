"""Tests that must fail, one per way an audit test fails. Not collected by default (the file
name is not ``test_*.py``): ``tests/test_example_verdicts.py`` names it on the command line and
checks that exactly these fail, as FAIL, in the default mode, in windowed mode and under
``-n 4``, with identical JUnit test cases.
"""

from __future__ import annotations

from fake_service import Service

from kubernaut_audit.pytest_plugin import AuditHelper


def test_an_event_that_never_comes(audit: AuditHelper, service: Service) -> None:
    """The gateway is asked for a CRD it never audits."""
    service.handle(audit.correlation_id, "gateway.signal.received")
    audit.expect(event_type="gateway.crd.created", timeout=6.0)


def test_an_unexpected_event(audit: AuditHelper, service: Service) -> None:
    """A failure event appears where none may."""
    service.handle(audit.correlation_id, "gateway.signal.received", "gateway.crd.failed")
    audit.expect(event_type="gateway.signal.received")
    audit.expect_none(event_type="gateway.crd.failed")


def test_a_count_that_is_off(audit: AuditHelper, service: Service) -> None:
    """Three duplicates are audited where two are expected."""
    service.handle(audit.correlation_id, *["gateway.signal.deduplicated"] * 3)
    audit.expect(event_type="gateway.signal.deduplicated", count=2, settle=True)


def test_an_ordinary_assert(audit: AuditHelper, service: Service) -> None:
    """The audit is fine; the test's own assertion is not."""
    service.handle(audit.correlation_id, "notification.message.sent")
    audit.expect(event_type="notification.message.sent")
    channel = "email"
    assert channel == "slack", "the code under test is wrong"
