"""The same suite written the old way: ``time.sleep(5)`` then one query (for bench_suite.py).

Selected with ``KUBERNAUT_AUDIT_EXAMPLES_SLEEP=1``; it replaces the plugin's ``audit`` helper
with one whose waits sleep five seconds and then check once.
"""

from __future__ import annotations

import time
from typing import Any

from kubernaut_audit import AuditClient, WaitResult, WaitStats
from kubernaut_audit._expectation import Expectation

SLEEP = 5.0


class SleepingAudit:
    """``audit.wait`` / ``audit.assert_none`` as tests wrote them before the SDK."""

    def __init__(self, client: AuditClient, correlation_id: str) -> None:
        self.client = client
        self.correlation_id = correlation_id

    def _matching(self, options: dict[str, Any]) -> tuple[Expectation, list[Any]]:
        options = {k: v for k, v in options.items() if k not in {"timeout", "settle"}}
        expectation = Expectation.build(self.correlation_id, **options)
        time.sleep(SLEEP)
        events = self.client.list_audit_events(correlation_id=self.correlation_id)
        return expectation, [e for e in events if expectation.matches(e)]

    def wait(self, **options: Any) -> WaitResult:
        expectation, matched = self._matching(options)
        missing = expectation.unmet(matched)
        assert not missing, f"missing {missing}"
        excess = expectation.excess(matched, exact_types=bool(options.get("settle")))
        assert excess is None, excess
        return WaitResult(matched, WaitStats(1, SLEEP, None, SLEEP, ()))

    def assert_none(self, **options: Any) -> None:
        _, matched = self._matching({**options, "min_count": 0})
        assert not matched, f"unexpected {len(matched)} event(s)"
