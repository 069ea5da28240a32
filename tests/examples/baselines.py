"""The same suite written the old ways, for ``bench_suite.py``: selected with
``KUBERNAUT_AUDIT_EXAMPLES_BASELINE``, they replace the plugin's ``audit`` helper.

* ``sleep``: ``time.sleep(5)`` once per test, then one query per check (as tests were written
  before the SDK);
* ``blocking``: each ``expect``/``expect_none`` is a blocking ``audit.wait``/``audit.assert_none``
  at the line that declares it (kubernaut-audit 0.1).
"""

from __future__ import annotations

import time
from typing import Any

from kubernaut_audit import AuditCheck, AuditClient
from kubernaut_audit.pytest_plugin import AuditHelper

SLEEP = 5.0


class SleepingAudit:
    """``audit.expect``/``audit.expect_none`` as a sleep, then a query."""

    def __init__(self, client: AuditClient, correlation_id: str) -> None:
        self.client = client
        self.correlation_id = correlation_id
        self._slept = False

    def _matching(self, check: AuditCheck) -> list[Any]:
        if not self._slept:
            time.sleep(SLEEP)
            self._slept = True
        events = self.client.list_audit_events(correlation_id=self.correlation_id)
        return [e for e in events if check.expectation.matches(e)]

    def expect(self, **options: Any) -> None:
        check = AuditCheck.expect(self.correlation_id, **options)
        matched = self._matching(check)
        missing = check.expectation.unmet(matched)
        assert not missing, f"missing {missing}"
        excess = check.expectation.excess(matched, exact_types=check.settle)
        assert excess is None, excess

    def expect_none(self, **options: Any) -> None:
        matched = self._matching(AuditCheck.expect_none(self.correlation_id, **options))
        assert not matched, f"unexpected {len(matched)} event(s)"


class BlockingAudit:
    """``audit.expect``/``audit.expect_none`` as the blocking waits they replace."""

    def __init__(self, helper: AuditHelper) -> None:
        self.helper = helper
        self.correlation_id = helper.correlation_id

    def expect(self, **options: Any) -> None:
        self.helper.wait(**options)

    def expect_none(self, **options: Any) -> None:
        self.helper.assert_none(**options)
