"""The seed scenario: tests trigger a 'service' whose audit writer is buffered (2 s flush).

The service is one per xdist worker, as a running service shared by the tests of a worker
would be. Run with ``--audit-emulator`` (see the Makefile's ``examples`` target), sequentially
or with ``-n 4``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fake_service import Service
from sleep_baseline import SleepingAudit

from kubernaut_audit import AuditClient
from kubernaut_audit.emitters import BufferedEmitter

if os.environ.get("KUBERNAUT_AUDIT_EXAMPLES_SLEEP") == "1":

    @pytest.fixture
    def audit(audit_client: AuditClient, correlation_id: str) -> SleepingAudit:
        """The pre-SDK way, for the benchmark's comparison."""
        return SleepingAudit(audit_client, correlation_id)


@pytest.fixture(scope="session")
def service(data_storage_url: str) -> Iterator[Service]:
    with BufferedEmitter(data_storage_url, flush_interval=2.0) as emitter:
        yield Service(emitter)
