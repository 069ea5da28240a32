"""POST .../remediation-requests/{id}/reconstruct answers as the service does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from trail_samples import base_time, envelope, gateway_data, lifecycle, new_cid, reconstruct_path

from kubernaut_audit.emulator import Emulator
from kubernaut_audit.emulator._goyaml import dump
from kubernaut_audit.emulator._reconstruct import format_duration, parse_duration

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 1, 12, 19, 53, 0, 250000, tzinfo=UTC)
GOYAML = json.loads((Path(__file__).parent / "golden" / "goyaml_vectors.json").read_text())


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator(clock=lambda: NOW)
    yield emu
    emu.close()


@pytest.fixture
async def http(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://ds") as client:
        yield client


async def _reconstruct(http: httpx.AsyncClient, cid: str) -> httpx.Response:
    return await http.post(reconstruct_path(cid))


def _resource(body: dict[str, Any]) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(body["remediation_request_yaml"])
    return loaded


async def test_full_lifecycle_is_complete_and_valid(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """Eight-type lifecycle: 100 % complete, no warnings, the documented body keys."""
    cid = new_cid()
    emulator.insert_events(lifecycle(cid))
    response = await _reconstruct(http, cid)
    body = response.json()
    assert list(body) == [
        "remediation_request_yaml",
        "validation",
        "reconstructed_at",
        "correlation_id",
    ]
    assert body["validation"] == {
        "is_valid": True,
        "completeness": 100,
        "errors": [],
        "warnings": [],
    }
    assert (body["reconstructed_at"], body["correlation_id"]) == ("2026-01-12T19:53:00Z", cid)


async def test_resource_shape(emulator: Emulator, http: httpx.AsyncClient) -> None:
    """The YAML is a RemediationRequest with the service's name, labels, spec and status."""
    cid = new_cid()
    emulator.insert_events(lifecycle(cid))
    resource = _resource((await _reconstruct(http, cid)).json())
    assert resource["metadata"]["name"] == f"rr-reconstructed-{cid}-{int(NOW.timestamp())}"
    assert resource["metadata"]["finalizers"] == ["kubernaut.ai/audit-retention"]
    assert resource["metadata"]["labels"]["kubernaut.ai/reconstructed"] == "true"
    assert resource["spec"]["originalPayload"] == '{"alert":"data"}'
    assert resource["status"]["timeoutConfig"] == {
        "global": "1h0m0s",
        "processing": "10m0s",
        "analyzing": "15m0s",
    }
    assert resource["status"]["workflowSelection"]["executionRef"] == {
        "apiVersion": "workflowexecution.kubernaut.ai/v1alpha1",
        "kind": "WorkflowExecution",
        "name": "we-1",
        "namespace": "production",
    }
    assert resource["status"]["completionStatus"] == {"outcome": "Success"}


async def test_yaml_is_go_yamls(emulator: Emulator, http: httpx.AsyncClient) -> None:
    """The YAML text is exactly go-yaml's rendering of the resource (sorted keys, quoting)."""
    cid = new_cid()
    emulator.insert_events(lifecycle(cid)[:2])
    text = (await _reconstruct(http, cid)).json()["remediation_request_yaml"]
    assert text == dump(yaml.safe_load(text))
    assert 'kubernaut.ai/reconstructed: "true"' in text
    assert "  creationTimestamp: null\n" in text


async def test_no_relevant_events_is_404(emulator: Emulator, http: httpx.AsyncClient) -> None:
    """Events of other types only: 404 audit/correlation-not-found."""
    cid = new_cid()
    emulator.insert_events(
        [envelope(cid, "gateway.signal.deduplicated", gateway_data(), base_time())]
    )
    response = await _reconstruct(http, cid)
    assert response.json() == {
        "type": "https://kubernaut.ai/problems/audit/correlation-not-found",
        "title": "Audit Events Not Found",
        "status": 404,
        "detail": f"No audit events found for correlation_id: {cid}",
    }


async def test_genesis_with_empty_signal_name_is_unparseable(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """A genesis event with signal_name "" is skipped; with nothing else parsed, 400."""
    cid = new_cid()
    emulator.insert_events(
        [envelope(cid, "gateway.signal.received", gateway_data(signal_name=""), base_time())]
    )
    response = await _reconstruct(http, cid)
    assert response.json()["type"].endswith("/reconstruction/no-parseable-events")


async def test_payload_that_does_not_decode_is_a_500(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """A payload missing a required field fails the whole request with a 500."""
    cid = new_cid()
    data = gateway_data()
    del data["fingerprint"]
    emulator.insert_events(lifecycle(cid))
    emulator.insert_events([envelope(cid, "gateway.signal.received", data, base_time())])
    response = await _reconstruct(http, cid)
    assert (response.status_code, response.json()["title"]) == (500, "Reconstruction Query Failed")


async def test_no_genesis_event_is_400(emulator: Emulator, http: httpx.AsyncClient) -> None:
    """Without a gateway or apifrontend genesis event: 400 missing-gateway-event."""
    cid = new_cid()
    emulator.insert_events(lifecycle(cid)[1:])
    response = await _reconstruct(http, cid)
    assert response.json()["detail"] == (
        "Required audit events are missing or incomplete for reconstruction"
    )


async def test_bad_timeout_duration_is_the_same_400(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """A timeout that is not a Go duration fails the mapping: missing-gateway-event."""
    cid = new_cid()
    events = lifecycle(cid)
    events[1]["event_data"]["timeout_config"] = {"global": "one hour"}
    emulator.insert_events(events)
    response = await _reconstruct(http, cid)
    assert response.json()["type"].endswith("/reconstruction/missing-gateway-event")


async def test_below_half_complete_is_400(emulator: Emulator, http: httpx.AsyncClient) -> None:
    """Name, type and labels only: 3 of 9 fields, 33 %, refused."""
    cid = new_cid()
    data = gateway_data()
    del data["signal_annotations"], data["original_payload"]
    emulator.insert_events([envelope(cid, "gateway.signal.received", data, base_time())])
    response = await _reconstruct(http, cid)
    assert response.json()["detail"] == "Reconstructed RR is only 33% complete"


async def test_invalid_but_complete_enough_is_200(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """An empty signal_type is an error and is_valid false, yet a 200 at 88 %."""
    cid = new_cid()
    events = lifecycle(cid)
    events[0]["event_data"]["signal_type"] = ""
    emulator.insert_events(events)
    body = (await _reconstruct(http, cid)).json()
    assert body["validation"]["is_valid"] is False
    assert body["validation"]["errors"] == ["SignalType is required in Spec"]
    assert body["validation"]["completeness"] == 88


async def test_apifrontend_genesis_sets_alert_and_no_labels(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """An apifrontend.rr.created genesis gives signalType alert and warns about labels."""
    cid = new_cid()
    af = envelope(
        cid,
        "apifrontend.rr.created",
        {
            "session_id": "s",
            "rr_name": "rr",
            "rr_namespace": "ns",
            "target_kind": "Deployment",
            "target_name": "api",
            "fingerprint": "fp",
            "signal_name": "ManualRemediation",
        },
        base_time(),
        cluster_id="prod-east-1",
    )
    emulator.insert_events([af, *lifecycle(cid)[1:]])
    body = (await _reconstruct(http, cid)).json()
    assert _resource(body)["spec"]["signalType"] == "alert"
    assert body["cluster_id"] == "prod-east-1"
    assert body["validation"]["warnings"][0].startswith("SignalLabels are missing")


async def test_later_events_win_and_maps_merge(emulator: Emulator, http: httpx.AsyncClient) -> None:
    """A later genesis overrides the name and adds labels; earlier labels stay."""
    cid = new_cid()
    events = lifecycle(cid)
    later = envelope(
        cid,
        "gateway.signal.received",
        gateway_data(signal_name="HighMemory", signal_labels={"team": "payments"}),
        base_time() + timedelta(minutes=5),
    )
    emulator.insert_events([*events, later])
    spec = _resource((await _reconstruct(http, cid)).json())["spec"]
    assert spec["signalName"] == "HighMemory"
    assert spec["signalLabels"] == {
        "alertname": "HighCPU",
        "severity": "critical",
        "team": "payments",
    }


async def test_failure_event_fills_completion_status(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """orchestrator.lifecycle.failed gives outcome, failure phase and the error message."""
    cid = new_cid()
    events = lifecycle(cid)[:-1]
    events.append(
        envelope(
            cid,
            "orchestrator.lifecycle.failed",
            {
                "rr_name": "rr-1",
                "namespace": "kubernaut-system",
                "outcome": "Failed",
                "failure_phase": "WorkflowExecution",
                "error_details": {
                    "message": "pod OOMKilled",
                    "code": "ERR_X",
                    "component": "workflowexecution",
                    "retry_possible": False,
                },
            },
            base_time() + timedelta(minutes=1),
        )
    )
    emulator.insert_events(events)
    status = _resource((await _reconstruct(http, cid)).json())["status"]
    assert status["completionStatus"] == {
        "outcome": "Failed",
        "failurePhase": "WorkflowExecution",
        "failureReason": "pod OOMKilled",
    }


@pytest.mark.parametrize("vector", GOYAML["vectors"], ids=lambda v: str(len(v["yaml"])))
def test_yaml_matches_go_yaml_golden(vector: dict[str, Any]) -> None:
    """The YAML writer gives go-yaml v2's bytes for each recorded input."""
    assert dump(vector["input"]) == vector["yaml"]


@pytest.mark.parametrize(
    ("text", "nanos", "shown"),
    [
        ("1h", 3_600_000_000_000, "1h0m0s"),
        ("90s", 90_000_000_000, "1m30s"),
        ("1.5h", 5_400_000_000_000, "1h30m0s"),
        ("500ms", 500_000_000, "500ms"),
        ("1500us", 1_500_000, "1.5ms"),
        ("2µs", 2_000, "2µs"),
        ("0", 0, "0s"),
        ("-3m", -180_000_000_000, "-3m0s"),
    ],
)
def test_go_durations(text: str, nanos: int, shown: str) -> None:
    """Durations parse as Go's ParseDuration and print as Duration.String."""
    assert parse_duration(text) == nanos
    assert format_duration(nanos) == shown


@pytest.mark.parametrize("text", ["", "1", "h", "1x", "1h30", ".h", "one hour"])
def test_go_duration_refusals(text: str) -> None:
    """Texts Go's ParseDuration refuses."""
    assert parse_duration(text) is None
