"""The seed scenario: tests trigger a 'service' whose audit writer is buffered (2 s flush).

The service is one per xdist worker, as a running service shared by the tests of a worker
would be. Run with ``--audit-emulator`` (see the Makefile's ``examples`` target), sequentially,
with ``--audit-window 64`` or with ``-n 4``.

``must_fail.py`` holds tests that must fail; it is collected only when named on the command
line (``tests/test_example_verdicts.py`` does, in every mode).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from baselines import BlockingAudit, SleepingAudit
from fake_service import Service

from kubernaut_audit import AuditClient
from kubernaut_audit.emitters import BufferedEmitter
from kubernaut_audit.pytest_plugin import AuditHelper

FLUSH_INTERVAL = 2.0
_BASELINE = os.environ.get("KUBERNAUT_AUDIT_EXAMPLES_BASELINE", "")

if _BASELINE == "sleep":

    @pytest.fixture
    def audit(audit_client: AuditClient, correlation_id: str) -> SleepingAudit:
        """The pre-SDK way, for the benchmark's comparison."""
        return SleepingAudit(audit_client, correlation_id)

elif _BASELINE == "blocking":

    @pytest.fixture
    def audit(audit: AuditHelper) -> BlockingAudit:
        """kubernaut-audit 0.1's blocking waits, for the benchmark's comparison."""
        return BlockingAudit(audit)


@pytest.fixture(scope="session")
def service(data_storage_url: str) -> Iterator[Service]:
    with BufferedEmitter(data_storage_url, flush_interval=FLUSH_INTERVAL) as emitter:
        yield Service(emitter)
