"""RemediationRequest reconstruction from the audit trail, as the service does it.

Reads up to 1000 events of eight lifecycle types (oldest first), decodes each payload as its
typed schema (one that does not fit fails the whole request with a 500), parses the events
(a genesis event without a signal name is skipped), merges them (the later non-empty scalar
wins, maps merge), builds the resource, checks nine fields for completeness (integer percent,
rounded down; below 50 is a 400) and answers with the resource as go-yaml writes it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from kubernaut_audit._gojson import go_string

from . import _goyaml
from ._gohttp import go_time, parse_rfc3339

GENESIS: Final = ("gateway.signal.received", "apifrontend.rr.created")
EVENT_TYPES: Final = (
    "gateway.signal.received",
    "apifrontend.rr.created",
    "aianalysis.analysis.completed",
    "workflowexecution.selection.completed",
    "workflowexecution.execution.started",
    "orchestrator.lifecycle.created",
    "orchestrator.lifecycle.completed",
    "orchestrator.lifecycle.failed",
)
MAX_EVENTS: Final = 1000
NAMESPACE: Final = "kubernaut-system"
_EXECUTION_API_VERSION: Final = "workflowexecution.kubernaut.ai/v1alpha1"

# The typed payloads the service decodes event_data into: field -> kind, and the required ones.
# Kinds: s string, i integer, b boolean, n number, t date-time, m map of strings, o any object,
# a array of strings, or a nested schema.
Schema = tuple[dict[str, Any], frozenset[str]]
_ERROR_DETAILS: Schema = (
    {"message": "s", "code": "s", "component": "s", "retry_possible": "b", "stack_trace": "a"},
    frozenset({"message", "code", "component", "retry_possible"}),
)
_TIMEOUT_CONFIG: Schema = (
    {"global": "s", "processing": "s", "analyzing": "s", "executing": "s"},
    frozenset(),
)
_PROVIDER_SUMMARY: Schema = (
    {
        "incident_id": "s",
        "analysis_preview": "s",
        "selected_workflow_id": "s",
        "needs_human_review": "b",
        "warnings_count": "i",
    },
    frozenset({"incident_id", "analysis_preview", "needs_human_review", "warnings_count"}),
)
_GATEWAY: Schema = (
    {
        "event_type": "s",
        "original_payload": "o",
        "signal_labels": "m",
        "signal_annotations": "m",
        "signal_type": "s",
        "signal_name": "s",
        "namespace": "s",
        "fingerprint": "s",
        "severity": "s",
        "resource_kind": "s",
        "resource_name": "s",
        "remediation_request": "s",
        "deduplication_status": "s",
        "occurrence_count": "i",
        "error_details": _ERROR_DETAILS,
    },
    frozenset({"signal_type", "signal_name", "namespace", "fingerprint", "event_type"}),
)
_APIFRONTEND: Schema = (
    dict.fromkeys(
        (
            "event_type",
            "session_id",
            "rr_name",
            "rr_namespace",
            "target_kind",
            "target_name",
            "fingerprint",
            "signal_name",
            "signal_source",
        ),
        "s",
    ),
    frozenset(
        {
            "event_type",
            "session_id",
            "rr_name",
            "rr_namespace",
            "target_kind",
            "target_name",
            "fingerprint",
            "signal_name",
        }
    ),
)
_ORCHESTRATOR: Schema = (
    {
        **dict.fromkeys(
            [
                "event_type",
                "rr_name",
                "namespace",
                "outcome",
                "failure_phase",
                "failure_reason",
                "from_phase",
                "to_phase",
                "transition_reason",
                "rar_name",
                "workflow_id",
                "confidence_str",
                "decision",
                "approved_by",
                "rejected_by",
                "rejection_reason",
                "message",
                "reason",
                "sub_reason",
                "notification_name",
                "pre_remediation_spec_hash",
                "target_resource",
                "workflow_version",
                "action_type",
                "signal_type",
                "signal_fingerprint",
                "crd_outcome",
                "ea_name",
                "hash_compute_delay",
                "alert_check_delay",
                "gitops_sync_delay",
                "operator_reconcile_delay",
            ],
            "s",
        ),
        "duration_ms": "i",
        "error_details": _ERROR_DETAILS,
        "required_by": "t",
        "timeout_config": _TIMEOUT_CONFIG,
        "is_gitops_managed": "b",
        "is_crd": "b",
    },
    frozenset({"rr_name", "namespace", "event_type"}),
)
_AIANALYSIS: Schema = (
    {
        "event_type": "s",
        "analysis_name": "s",
        "namespace": "s",
        "phase": "s",
        "approval_required": "b",
        "approval_reason": "s",
        "degraded_mode": "b",
        "warnings_count": "i",
        "confidence": "n",
        "workflow_id": "s",
        "reason": "s",
        "sub_reason": "s",
        "provider_response_summary": _PROVIDER_SUMMARY,
        "error_details": _ERROR_DETAILS,
    },
    frozenset(
        {
            "analysis_name",
            "namespace",
            "phase",
            "approval_required",
            "degraded_mode",
            "warnings_count",
            "event_type",
        }
    ),
)
_WORKFLOW: Schema = (
    {
        **dict.fromkeys(
            [
                "event_type",
                "workflow_id",
                "workflow_version",
                "workflow_name",
                "action_type",
                "target_resource",
                "phase",
                "container_image",
                "execution_name",
                "duration",
                "failure_reason",
                "failure_message",
                "failed_task_name",
                "pipelinerun_name",
            ],
            "s",
        ),
        "started_at": "t",
        "completed_at": "t",
        "error_details": _ERROR_DETAILS,
        "parameters": "m",
        "retry_count": "i",
    },
    frozenset(
        {
            "workflow_id",
            "workflow_version",
            "target_resource",
            "phase",
            "container_image",
            "execution_name",
            "event_type",
        }
    ),
)
PAYLOADS: Final[dict[str, Schema]] = {
    "gateway.signal.received": _GATEWAY,
    "apifrontend.rr.created": _APIFRONTEND,
    "orchestrator.lifecycle.created": _ORCHESTRATOR,
    "orchestrator.lifecycle.completed": _ORCHESTRATOR,
    "orchestrator.lifecycle.failed": _ORCHESTRATOR,
    "aianalysis.analysis.completed": _AIANALYSIS,
    "workflowexecution.selection.completed": _WORKFLOW,
    "workflowexecution.execution.started": _WORKFLOW,
}
_WARNINGS = (
    ("signalLabels", "SignalLabels are missing (Gap #2) - labels provide context for signal"),
    (
        "signalAnnotations",
        "SignalAnnotations are missing (Gap #3) - annotations provide additional metadata",
    ),
    (
        "originalPayload",
        "OriginalPayload is missing (Gap #1) - full audit trail requires original data",
    ),
    ("timeoutConfig", "TimeoutConfig is missing (Gap #8) - operational timeouts may use defaults"),
    ("providerData", "providerData is missing (Gap #4) - AI analysis summary unavailable"),
    (
        "selectedWorkflowRef",
        "selectedWorkflowRef is missing (Gap #5) - workflow selection data unavailable",
    ),
    ("executionRef", "executionRef is missing (Gap #6) - workflow execution reference unavailable"),
)


class Failure(Exception):
    """A reconstruction the service answers with a problem: status, type, title, detail."""

    def __init__(self, status: int, kind: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail = status, kind, title, detail


# -- decoding the typed payloads ------------------------------------------------------------


def fits(value: Any, schema: Schema) -> bool:
    """Whether a stored payload decodes into its typed schema (types and required fields)."""
    if not isinstance(value, dict):
        return False
    properties, required = schema
    if not required <= value.keys():
        return False
    return all(_fits_kind(value[name], kind) for name, kind in properties.items() if name in value)


def _fits_kind(value: Any, kind: Any) -> bool:
    if isinstance(kind, tuple):
        return fits(value, kind)
    if kind == "s":
        return isinstance(value, str)
    if kind == "b":
        return isinstance(value, bool)
    if kind == "i":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "n":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "t":
        return isinstance(value, str) and parse_rfc3339(value) is not None
    if kind == "m":
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    if kind == "o":
        return isinstance(value, dict)
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# -- Go durations ---------------------------------------------------------------------------

_UNITS = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,
    "\u03bcs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")


def parse_duration(text: str) -> int | None:
    """Go's ``time.ParseDuration`` in nanoseconds, or None when Go refuses the text."""
    body = text
    negative = False
    if body and body[0] in "+-":
        negative = body[0] == "-"
        body = body[1:]
    if body == "0":
        return 0
    if not body:
        return None
    total = 0
    at = 0
    while at < len(body):
        match = _DURATION_PART.match(body, at)
        if match is None or (match.group(1) == "" and not match.group(2)):
            return None
        whole, fraction, unit = match.group(1), match.group(2) or "", match.group(3)
        scale = _UNITS[unit]
        total += int(whole or "0") * scale
        if fraction:
            total += int(float(int(fraction)) * (scale / 10 ** len(fraction)))
        at = match.end()
        if total > 2**63 - 1:
            return None
    return -total if negative else total


def format_duration(nanos: int) -> str:
    """Go's ``time.Duration.String`` (``1h0m0s``, ``1.5s``, ``500ms``, ``0s``)."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    value = abs(nanos)
    if value < 1_000_000_000:
        for limit, digits, unit in ((1_000, 0, "ns"), (1_000_000, 3, "\u00b5s")):
            if value < limit:
                return sign + _decimal(value, digits) + unit
        return sign + _decimal(value, 6) + "ms"
    seconds, fraction = divmod(value, 1_000_000_000)
    text = _decimal(seconds % 60 * 1_000_000_000 + fraction, 9) + "s"
    minutes = seconds // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        if minutes // 60:
            text = f"{minutes // 60}h{text}"
    return sign + text


def _decimal(value: int, digits: int) -> str:
    if digits == 0:
        return str(value)
    whole, fraction = divmod(value, 10**digits)
    tail = f"{fraction:0{digits}d}".rstrip("0")
    return f"{whole}.{tail}" if tail else str(whole)


# -- JSON texts the resource carries ---------------------------------------------------------


def _jsonb_text(value: Any) -> str:
    """The stored JSONB value as PostgreSQL prints it, compacted by Go's encoder: object keys
    shortest first, then bytewise; numbers written out in full; ``<>&`` escaped."""
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return "{" + ",".join(f"{go_string(k)}:{_jsonb_text(value[k])}" for k in keys) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_jsonb_text(item) for item in value) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return format(Decimal(repr(value) if isinstance(value, float) else value), "f")
    return go_string(str(value))


def _provider_text(summary: Mapping[str, Any]) -> str:
    """The provider summary as the service's typed encoder writes it (schema order)."""
    parts = [
        f'"incident_id":{_plain_json(summary["incident_id"])}',
        f'"analysis_preview":{_plain_json(summary["analysis_preview"])}',
    ]
    if "selected_workflow_id" in summary:
        parts.append(f'"selected_workflow_id":{_plain_json(summary["selected_workflow_id"])}')
    parts.append(f'"needs_human_review":{json.dumps(summary["needs_human_review"])}')
    parts.append(f'"warnings_count":{summary["warnings_count"]}')
    return "{" + ",".join(parts) + "}"


def _plain_json(text: str) -> str:
    # The typed encoder escapes quotes, backslashes and control characters, not <>&.
    return json.dumps(text, ensure_ascii=False)


# -- parse, merge, build, validate ------------------------------------------------------------


@dataclass
class _Fields:
    spec: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    timeout: dict[str, str] | None = None
    completion: dict[str, str] = field(default_factory=dict)
    selection: dict[str, Any] = field(default_factory=dict)


def _parse(row: Mapping[str, Any], data: dict[str, Any]) -> dict[str, Any] | None:
    """One event's reconstruction data, or None when the service's parser rejects it."""
    event_type = row["event_type"]
    parsed: dict[str, Any] = {"event_type": event_type, "cluster_id": row["cluster_id"] or ""}
    if event_type == "gateway.signal.received":
        if not data.get("signal_name"):
            return None
        signal_type = data["signal_type"]
        parsed.update(
            signal_name=data["signal_name"],
            signal_type=(
                "alert" if signal_type in ("prometheus-alert", "kubernetes-event") else signal_type
            ),
            fingerprint=data["fingerprint"],
            labels=dict(data.get("signal_labels", {})),
            annotations=dict(data.get("signal_annotations", {})),
        )
        if "original_payload" in data:
            parsed["original_payload"] = _jsonb_text(data["original_payload"])
    elif event_type == "apifrontend.rr.created":
        if not data.get("signal_name"):
            return None
        parsed.update(
            signal_name=data["signal_name"], signal_type="alert", fingerprint=data["fingerprint"]
        )
    elif event_type == "orchestrator.lifecycle.created":
        if "timeout_config" in data:
            parsed["timeout"] = {k: data["timeout_config"].get(k, "") for k in _TIMEOUT_CONFIG[0]}
    elif event_type in ("orchestrator.lifecycle.completed", "orchestrator.lifecycle.failed"):
        parsed["outcome"] = data.get("outcome", "")
        if event_type.endswith("failed"):
            parsed["failure_phase"] = data.get("failure_phase", "")
            details = data.get("error_details")
            parsed["failure_reason"] = details["message"] if details else ""
    elif event_type == "aianalysis.analysis.completed":
        summary = data.get("provider_response_summary")
        parsed["provider_data"] = _provider_text(summary) if summary is not None else ""
    elif event_type == "workflowexecution.selection.completed":
        parsed["workflow_ref"] = {
            "workflowId": data.get("workflow_id", ""),
            "version": data.get("workflow_version", ""),
            "executionBundle": data.get("container_image", ""),
        }
    else:  # workflowexecution.execution.started
        parsed["execution_ref"] = {
            "apiVersion": _EXECUTION_API_VERSION,
            "kind": "WorkflowExecution",
            "name": data.get("execution_name", ""),
            "namespace": row["namespace"] or "",
        }
    return parsed


def _merge(events: list[dict[str, Any]]) -> _Fields:
    if not any(e["event_type"] in GENESIS for e in events):
        raise _missing_genesis()
    merged = _Fields()
    spec = merged.spec
    for event in events:
        event_type = event["event_type"]
        if event_type in GENESIS:
            for source, target in (
                ("signal_name", "signalName"),
                ("signal_type", "signalType"),
                ("fingerprint", "signalFingerprint"),
                ("cluster_id", "clusterID"),
                ("original_payload", "originalPayload"),
            ):
                if event.get(source):
                    spec[target] = event[source]
            if "labels" in event:
                merged.labels = {**(merged.labels or {}), **event["labels"]}
                merged.annotations = {**(merged.annotations or {}), **event["annotations"]}
        elif event_type == "orchestrator.lifecycle.created" and "timeout" in event:
            timeout = {}
            for name, text in event["timeout"].items():
                if text:
                    nanos = parse_duration(text)
                    if nanos is None:
                        raise _missing_genesis()
                    timeout[name] = format_duration(nanos)
            merged.timeout = timeout
        elif event_type == "aianalysis.analysis.completed" and event["provider_data"]:
            spec["providerData"] = event["provider_data"]
        elif "workflow_ref" in event:
            merged.selection["selectedWorkflowRef"] = event["workflow_ref"]
        elif "execution_ref" in event:
            merged.selection["executionRef"] = {
                k: v for k, v in event["execution_ref"].items() if v
            }
        else:
            for name, key in (
                ("outcome", "outcome"),
                ("failure_phase", "failurePhase"),
                ("failure_reason", "failureReason"),
            ):
                if event.get(name):
                    merged.completion[key] = event[name]
    return merged


def _missing_genesis() -> Failure:
    return Failure(
        400,
        "reconstruction/missing-gateway-event",
        "Reconstruction Failed",
        "Required audit events are missing or incomplete for reconstruction",
    )


def _resource(correlation_id: str, merged: _Fields, now: datetime) -> dict[str, Any]:
    spec = merged.spec
    resource_spec: dict[str, Any] = {
        "signalFingerprint": spec.get("signalFingerprint", ""),
        "signalName": spec.get("signalName", ""),
        "severity": "",
        "signalType": spec.get("signalType", ""),
        "targetType": "",
        "targetResource": {"kind": "", "name": ""},
        "firingTime": None,
        "receivedTime": None,
    }
    for key in ("clusterID", "providerData", "originalPayload"):
        if spec.get(key):
            resource_spec[key] = spec[key]
    if merged.labels:
        resource_spec["signalLabels"] = merged.labels
    if merged.annotations:
        resource_spec["signalAnnotations"] = merged.annotations
    status: dict[str, Any] = {}
    if merged.completion:
        status["completionStatus"] = merged.completion
    if merged.selection:
        status["workflowSelection"] = merged.selection
    if merged.timeout is not None:
        status["timeoutConfig"] = merged.timeout
    return {
        "kind": "RemediationRequest",
        "apiVersion": "remediation.kubernaut.ai/v1alpha1",
        "metadata": {
            "name": f"rr-reconstructed-{correlation_id}-{int(now.timestamp())}",
            "namespace": NAMESPACE,
            "creationTimestamp": None,
            "labels": {
                "app.kubernetes.io/managed-by": "kubernaut-datastorage",
                "kubernaut.ai/reconstructed": "true",
                "kubernaut.ai/correlation-id": correlation_id,
            },
            "annotations": {
                "kubernaut.ai/reconstructed-at": go_time(now, nano=False),
                "kubernaut.ai/reconstruction-source": "audit-trail",
                "kubernaut.ai/correlation-id": correlation_id,
            },
            "finalizers": ["kubernaut.ai/audit-retention"],
        },
        "spec": resource_spec,
        "status": status,
    }


def _validate(merged: _Fields) -> dict[str, Any]:
    errors = [
        f"{name} is required in Spec"
        for name, key in (("SignalName", "signalName"), ("SignalType", "signalType"))
        if not merged.spec.get(key)
    ]
    present = {
        "signalLabels": bool(merged.labels),
        "signalAnnotations": bool(merged.annotations),
        "originalPayload": bool(merged.spec.get("originalPayload")),
        "timeoutConfig": merged.timeout is not None,
        "providerData": bool(merged.spec.get("providerData")),
        "selectedWorkflowRef": "selectedWorkflowRef" in merged.selection,
        "executionRef": "executionRef" in merged.selection,
    }
    warnings = [text for key, text in _WARNINGS if not present[key]]
    found = (2 - len(errors)) + sum(present.values())
    return {
        "is_valid": not errors,
        "completeness": found * 100 // 9,
        "errors": errors,
        "warnings": warnings,
    }


def reconstruct(correlation_id: str, rows: list[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The 200 body for ``rows`` (the correlation id's rows of the eight types, oldest first,
    at most 1000), or raise :class:`Failure` with the service's problem."""
    decoded: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for row in rows:
        data = json.loads(row["event_data"]) if row["event_data"] is not None else None
        if data is None:  # no payload at all: parsed with every field empty
            decoded.append((row, {}))
            continue
        if not fits(data, PAYLOADS[row["event_type"]]):
            raise Failure(
                500,
                "reconstruction/query-failed",
                "Reconstruction Query Failed",
                "An internal error occurred. Check server logs for details.",
            )
        decoded.append((row, data))
    if not decoded:
        raise Failure(
            404,
            "audit/correlation-not-found",
            "Audit Events Not Found",
            f"No audit events found for correlation_id: {correlation_id}",
        )
    parsed = [p for row, data in decoded if (p := _parse(row, data)) is not None]
    if not parsed:
        raise Failure(
            400,
            "reconstruction/no-parseable-events",
            "Reconstruction Failed",
            "No parseable audit events found for reconstruction",
        )
    merged = _merge(parsed)
    validation = _validate(merged)
    if validation["completeness"] < 50:
        raise Failure(
            400,
            "reconstruction/incomplete-data",
            "Incomplete Reconstruction",
            f"Reconstructed RR is only {validation['completeness']}% complete",
        )
    body: dict[str, Any] = {
        "remediation_request_yaml": _goyaml.dump(_resource(correlation_id, merged, now)),
        "validation": validation,
        "reconstructed_at": go_time(now, nano=False),
        "correlation_id": correlation_id,
    }
    if merged.spec.get("clusterID"):
        body["cluster_id"] = merged.spec["clusterID"]
    return body
