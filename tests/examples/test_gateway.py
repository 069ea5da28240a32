"""Gateway-like tests: one event per request, deduplication, CRD creation."""

from __future__ import annotations

import pytest
from fake_service import Service

from kubernaut_audit.pytest_plugin import AuditHelper

SIGNALS = ["HighMemoryUsage", "PodCrashLooping", "NodeNotReady", "DiskPressure", "CPUThrottling"]


@pytest.mark.parametrize("signal", SIGNALS)
def test_signal_received_is_audited(audit: AuditHelper, service: Service, signal: str) -> None:
    """Receiving a signal writes exactly one gateway.signal.received event, then nothing more."""
    service.handle(audit.correlation_id, "gateway.signal.received")
    audit.expect(
        event_type="gateway.signal.received",
        count=1,
        settle=True,
        where=lambda e: e.event_category == "gateway",
    )
    audit.expect_none(event_type="gateway.crd.failed")


@pytest.mark.parametrize("attempt", range(4))
def test_crd_creation_follows_the_signal(
    audit: AuditHelper, service: Service, attempt: int
) -> None:
    """A new signal leads to a received and a crd.created event."""
    service.handle(audit.correlation_id, "gateway.signal.received", "gateway.crd.created")
    audit.expect(event_types=["gateway.signal.received", "gateway.crd.created"])


@pytest.mark.parametrize("copies", [2, 3, 4])
def test_duplicates_are_counted_exactly(audit: AuditHelper, service: Service, copies: int) -> None:
    """Each duplicate of a signal is audited once: exactly `copies` events, then quiet."""
    service.handle(audit.correlation_id, *["gateway.signal.deduplicated"] * copies)
    audit.expect(event_type="gateway.signal.deduplicated", count=copies, settle=True)


@pytest.mark.parametrize("signal", SIGNALS[:3])
def test_a_valid_signal_creates_no_failure_event(
    audit: AuditHelper, service: Service, signal: str
) -> None:
    """A successful path never audits gateway.crd.failed."""
    service.handle(audit.correlation_id, "gateway.signal.received")
    audit.expect(event_type="gateway.signal.received")
    audit.expect_none(event_type="gateway.crd.failed")
