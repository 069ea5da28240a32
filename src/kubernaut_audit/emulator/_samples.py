"""Realistic audit events, as Kubernaut's services write them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

_CATEGORIES = {
    "gateway": "gateway",
    "signalprocessing": "signalprocessing",
    "aianalysis": "analysis",
    "workflowexecution": "workflowexecution",
    "orchestrator": "orchestration",
    "notification": "notification",
    "effectiveness": "effectiveness",
    "aiagent": "aiagent",
}


def _payload(event_type: str, correlation_id: str) -> dict[str, Any]:
    short = correlation_id[-8:]
    if event_type.startswith("gateway."):
        return {
            "signal_type": "alert",
            "signal_name": "KubePodCrashLooping",
            "namespace": "production",
            "fingerprint": uuid.uuid5(uuid.NAMESPACE_URL, correlation_id).hex,
            "severity": "critical",
            "resource_kind": "Pod",
            "resource_name": f"payments-api-{short}",
            "remediation_request": f"rr-{short}",
            "deduplication_status": "new",
            "occurrence_count": 1,
            "signal_labels": {"alertname": "KubePodCrashLooping", "team": "payments"},
        }
    if event_type.startswith("signalprocessing."):
        return {
            "phase": "Completed",
            "signal": "KubePodCrashLooping",
            "severity": "critical",
            "normalized_severity": "critical",
            "environment": "production",
            "environment_source": "labels",
            "priority": "P1",
        }
    if event_type == "aianalysis.phase.transition":
        return {"old_phase": "Investigating", "new_phase": "Analyzing"}
    if event_type.startswith("workflowexecution."):
        return {
            "workflow_id": "restart-crashlooping-pod",
            "workflow_version": "1.2.0",
            "workflow_name": "Restart crash-looping pod",
            "action_type": "RestartPod",
            "target_resource": f"production/Pod/payments-api-{short}",
            "phase": "Running" if event_type.endswith("started") else "Completed",
            "container_image": "quay.io/kubernaut/workflows/restart-pod:1.2.0",
            "execution_name": f"we-{short}",
        }
    if event_type.startswith("orchestrator."):
        return {
            "rr_name": f"rr-{short}",
            "namespace": "production",
            "outcome": "Success" if event_type.endswith("completed") else "Pending",
            "duration_ms": 4250,
        }
    if event_type.startswith("notification."):
        return {
            "notification_id": f"notif-{short}",
            "channel": "slack",
            "subject": "Remediation completed: KubePodCrashLooping",
            "body": "payments-api was restarted; the pod is Ready again.",
            "priority": "high",
            "type": "status-update",
        }
    return {"detail": "synthetic payload"}


def make_event(
    correlation_id: str, event_type: str = "gateway.signal.received", **overrides: Any
) -> dict[str, Any]:
    """Return an audit event dict as a Kubernaut service would write it.

    ``event_data`` carries the field names of the service's payload for the common event types
    (gateway, signal processing, AI analysis phase transitions, workflow execution, orchestrator
    lifecycle, notifications) and a generic payload otherwise; ``event_timestamp`` is now.

    Args:
        correlation_id: The remediation the event belongs to.
        event_type: Dotted event type; its first segment picks ``event_category``.
        **overrides: Envelope fields to set or replace (``event_data`` included).
    """
    service = event_type.split(".", 1)[0]
    category = _CATEGORIES.get(service, "gateway")
    event: dict[str, Any] = {
        "version": "1.0",
        "event_type": event_type,
        "event_timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "event_category": category,
        "event_action": event_type.rsplit(".", 1)[-1][:50],
        "event_outcome": "success",
        "correlation_id": correlation_id,
        "namespace": "production",
        "event_data": {"event_type": event_type, **_payload(event_type, correlation_id)},
    }
    event.update(overrides)
    return event
