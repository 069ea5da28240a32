"""Audit trails for the export, verification, legal-hold and reconstruction tests.

The lifecycle events carry payloads that fit the service's typed schemas (the reconstruction
decodes them), with timestamps one second apart so that their order is known.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernaut_audit.emulator import Emulator

EXPORT = "/api/v1/audit/export"
VERIFY = "/api/v1/audit/verify-chain"
LEGAL_HOLD = "/api/v1/audit/legal-hold"
USER = {"X-Auth-Request-User": "system:serviceaccount:kubernaut-system:auditor"}


def new_cid() -> str:
    return f"rr-{uuid.uuid4().hex[:12]}"


def reconstruct_path(correlation_id: str) -> str:
    return f"/api/v1/audit/remediation-requests/{correlation_id}/reconstruct"


def base_time() -> datetime:
    """A moment inside the write window, on a whole second."""
    return (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


def envelope(
    correlation_id: str,
    event_type: str,
    data: dict[str, Any],
    at: datetime,
    **extra: Any,
) -> dict[str, Any]:
    service, _, action = event_type.rpartition(".")
    categories = {
        "gateway": "gateway",
        "apifrontend": "apifrontend",
        "aianalysis": "analysis",
        "workflowexecution": "workflowexecution",
        "orchestrator": "orchestration",
    }
    return {
        "version": "1.0",
        "event_type": event_type,
        "event_timestamp": at.isoformat(),
        "event_category": categories.get(service.split(".")[0], "gateway"),
        "event_action": action,
        "event_outcome": "success",
        "correlation_id": correlation_id,
        "event_data": {"event_type": event_type, **data},
        **extra,
    }


def gateway_data(**overrides: Any) -> dict[str, Any]:
    return {
        "signal_type": "alert",
        "signal_name": "HighCPU",
        "namespace": "production",
        "fingerprint": "f" * 64,
        "signal_labels": {"alertname": "HighCPU", "severity": "critical"},
        "signal_annotations": {"summary": "CPU usage is high"},
        "original_payload": {"alert": "data"},
        **overrides,
    }


def lifecycle(correlation_id: str, start: datetime | None = None) -> list[dict[str, Any]]:
    """A whole remediation: genesis, timeouts, analysis, workflow, execution, completion."""
    at = start or base_time()
    steps: list[tuple[str, dict[str, Any]]] = [
        ("gateway.signal.received", gateway_data()),
        (
            "orchestrator.lifecycle.created",
            {
                "rr_name": "rr-1",
                "namespace": "kubernaut-system",
                "timeout_config": {"global": "1h", "processing": "10m", "analyzing": "15m"},
            },
        ),
        (
            "aianalysis.analysis.completed",
            {
                "analysis_name": "ai-1",
                "namespace": "kubernaut-system",
                "phase": "Completed",
                "approval_required": False,
                "degraded_mode": False,
                "warnings_count": 0,
                "provider_response_summary": {
                    "incident_id": "inc-1",
                    "analysis_preview": "CPU saturation",
                    "needs_human_review": False,
                    "warnings_count": 0,
                },
            },
        ),
        (
            "workflowexecution.selection.completed",
            {
                "workflow_id": "scale-up",
                "workflow_version": "1.0.0",
                "target_resource": "production/Deployment/api",
                "phase": "Pending",
                "container_image": "quay.io/kubernaut/scale-up:1.0.0",
                "execution_name": "we-1",
            },
        ),
        (
            "workflowexecution.execution.started",
            {
                "workflow_id": "scale-up",
                "workflow_version": "1.0.0",
                "target_resource": "production/Deployment/api",
                "phase": "Running",
                "container_image": "quay.io/kubernaut/scale-up:1.0.0",
                "execution_name": "we-1",
            },
        ),
        (
            "orchestrator.lifecycle.completed",
            {"rr_name": "rr-1", "namespace": "kubernaut-system", "outcome": "Success"},
        ),
    ]
    events = []
    for n, (event_type, data) in enumerate(steps):
        extra = {"namespace": "production"} if event_type.endswith("execution.started") else {}
        events.append(
            envelope(correlation_id, event_type, data, at + timedelta(seconds=n), **extra)
        )
    return events


def plain_events(
    correlation_id: str, count: int, start: datetime | None = None
) -> list[dict[str, Any]]:
    """``count`` gateway events one second apart."""
    at = start or base_time()
    return [
        envelope(
            correlation_id,
            "gateway.signal.received",
            gateway_data(signal_name=f"Alert{n}"),
            at + timedelta(seconds=n),
        )
        for n in range(count)
    ]


def stored(emulator: Emulator, events: list[dict[str, Any]]) -> list[str]:
    """Insert events (in the order given) and return their ids."""
    return emulator.insert_events(events)
