"""audit.verify_chain(): a test proves its events were chained."""

from __future__ import annotations

# See tests/test_plugin.py: httpcore must be imported before pytester runs in-process suites.
import httpcore  # noqa: F401
import pytest
from trail_samples import new_cid, plain_events

from kubernaut_audit import AuditClient
from kubernaut_audit.emulator import Emulator
from kubernaut_audit.pytest_plugin import AuditHelper

pytest_plugins = ["pytester"]


def test_verify_chain_in_a_suite(pytester: pytest.Pytester) -> None:
    """In a generated suite, a test writes events and asserts audit.verify_chain().intact."""
    pytester.makepyfile(
        """
        from kubernaut_audit.emulator import make_event

        def test_chained(audit, audit_client):
            audit_client.create_audit_events(
                [make_event(audit.correlation_id, "gateway.signal.received") for _ in range(3)]
            )
            result = audit.verify_chain()
            assert result.intact, result
            assert result.total_events == 3
        """
    )
    pytester.runpytest("-p", "no:cacheprovider", "--audit-emulator").assert_outcomes(passed=1)


def test_verify_chain_reports_a_tampered_event() -> None:
    """The helper's verification names a row changed behind the service's back."""
    emulator = Emulator()
    cid = new_cid()
    ids = emulator.insert_events(plain_events(cid, 3))
    emulator.tamper_event(ids[1], event_action="rewritten")
    with AuditClient(transport=emulator.transport()) as client:
        result = AuditHelper(client, cid).verify_chain(algorithm="sha256-unkeyed")
    emulator.close()
    assert [str(i) for i in result.broken_event_ids] == [ids[1]]
