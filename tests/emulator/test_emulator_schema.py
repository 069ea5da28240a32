"""The emulator's Go encoding and its two request checks (validation middleware, typed decoder)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from emulator_helpers import EVENTS, PAYLOAD_SPEC, event, new_cid

from kubernaut_audit.emulator import Emulator, make_event
from kubernaut_audit.emulator._events import OPEN_PAYLOAD_SCHEMA, REQUEST_SCHEMA
from kubernaut_audit.emulator._wire import go_dumps

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
OUR_SPEC = ROOT / "openapi" / "data-storage-audit.yaml"


@pytest.fixture
def anyio_backend() -> str:
    """The emulator in-process does not depend on the event loop: asyncio only."""
    return "asyncio"


def _upstream_spec() -> Path | None:
    configured = os.environ.get("DATA_STORAGE_SPEC")
    path = Path(configured) if configured else ROOT.parent / "shared/reference/data-storage-v1.yaml"
    return path if path.is_file() else None


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2.5, "2.5"),
        (100.0, "100"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.2345678901234568e20, "123456789012345680000"),
        (0.000001, "0.000001"),
        (1e-7, "1e-7"),
        (1.5e-10, "1.5e-10"),
        (-2.5e300, "-2.5e+300"),
        (0.1, "0.1"),
    ],
)
def test_floats_print_as_go_prints_a_float64(value: float, text: str) -> None:
    """Shortest digits; exponent form only below 1e-6 or from 1e21, e-07 shortened to e-7."""
    assert go_dumps(value) == text


def test_strings_are_escaped_as_go_escapes_them() -> None:
    """<, >, &, U+2028 and U+2029 are escaped; other non-ASCII stays raw."""
    text = "<a href='x'>&</a>\u2028\u2029é\n\x01"
    assert (
        go_dumps(text)
        == "\"\\u003ca href='x'\\u003e\\u0026\\u003c/a\\u003e\\u2028\\u2029é\\n\\u0001\""
    )


def _resolved(node: Any, schemas: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            return _resolved(schemas[node["$ref"].rsplit("/", 1)[-1]], schemas)
        return {
            key: _resolved(value, schemas)
            for key, value in node.items()
            if key not in ("description", "example")
        }
    if isinstance(node, list):
        return [_resolved(item, schemas) for item in node]
    return node


def test_the_request_schema_is_our_specs() -> None:
    """The emulator checks the envelope against AuditEventRequest as openapi/ declares it."""
    schemas = yaml.safe_load(OUR_SPEC.read_text())["components"]["schemas"]
    ours = _resolved(schemas["AuditEventRequest"], schemas)
    assert ours.pop("properties").pop("event_data") == _resolved(schemas["AuditEventData"], schemas)
    emulated = json.loads(json.dumps(REQUEST_SCHEMA))
    assert emulated.pop("properties").pop("event_data") == {"type": "object"}
    assert emulated == ours
    assert _resolved(schemas["AuditEventData"], schemas) == OPEN_PAYLOAD_SCHEMA


@pytest.fixture
def strict() -> Emulator:
    return Emulator(spec=PAYLOAD_SPEC)


async def _read(emu: Emulator, cid: str) -> dict[str, Any]:
    async with httpx.AsyncClient(transport=emu.transport(), base_url="http://ds") as http:
        response = await http.get(EVENTS, params={"correlation_id": cid, "limit": 1})
    item: dict[str, Any] = response.json()["data"][0]
    return item


async def test_defaults_of_payload_members_are_filled_in() -> None:
    """The validation middleware fills in a payload member's default when the writer omits it."""
    spec = json.loads(json.dumps(PAYLOAD_SPEC))
    properties = spec["components"]["schemas"]["PhasePayload"]["properties"]
    properties["attempt"] = {"type": "integer", "default": 1}
    emu = Emulator(spec=spec)
    cid = new_cid()
    data = {"event_type": "aianalysis.phase.transition", "old_phase": "a", "new_phase": "Analyzing"}
    emu.insert_events([event(cid, "aianalysis.phase.transition", event_data=data)])
    assert (await _read(emu, cid))["event_data"]["attempt"] == 1


@pytest.mark.parametrize(
    ("written", "read"),
    [
        ("8A0F6BB1-2D7E-4D43-9A57-5A1F0B1C3D4E", "8a0f6bb1-2d7e-4d43-9a57-5a1f0b1c3d4e"),
        ("{8a0f6bb1-2d7e-4d43-9a57-5a1f0b1c3d4e}", "8a0f6bb1-2d7e-4d43-9a57-5a1f0b1c3d4e"),
        ("urn:uuid:8a0f6bb1-2d7e-4d43-9a57-5a1f0b1c3d4e", "8a0f6bb1-2d7e-4d43-9a57-5a1f0b1c3d4e"),
        ("8a0f6bb12d7e4d439a575a1f0b1c3d4e", "8a0f6bb1-2d7e-4d43-9a57-5a1f0b1c3d4e"),
    ],
)
async def test_uuids_in_payloads_come_back_canonical(
    strict: Emulator, written: str, read: str
) -> None:
    """A UUID in any form Go's parser takes reads back canonical and lower case."""
    cid = new_cid()
    data = {"event_type": "gateway.signal.received", "signal_name": "s", "fingerprint": written}
    strict.insert_events([event(cid, event_data=data)])
    assert (await _read(strict, cid))["event_data"]["fingerprint"] == read


@pytest.mark.parametrize(
    ("written", "read"),
    [("10.0.0.1/32", "10.0.0.1"), ("10.0.0.1/8", "10.0.0.1/8"), ("FE80::0:1", "fe80::1")],
)
async def test_actor_ip_reads_back_as_inet_prints_it(written: str, read: str) -> None:
    """actor_ip is stored as inet: a host loses /32, IPv6 comes back in canonical form."""
    emu = Emulator()
    cid = new_cid()
    emu.insert_events([event(cid, actor_ip=written)])
    assert (await _read(emu, cid))["actor_ip"] == read


async def test_a_parent_date_without_a_parent_keeps_its_own_calendar_day() -> None:
    """parent_event_date without parent_event_id is a DATE of the day as sent, in its offset."""
    emu = Emulator()
    cid = new_cid()
    emu.insert_events([event(cid, parent_event_date="2026-01-02T00:30:00+02:00")])
    assert (await _read(emu, cid))["parent_event_date"] == "2026-01-02T00:00:00Z"


async def test_float_payload_members_pass_through_a_float32() -> None:
    """A payload number of format float is decoded as a float32, then read as a float64."""
    spec = json.loads(json.dumps(PAYLOAD_SPEC))
    properties = spec["components"]["schemas"]["SignalPayload"]["properties"]
    properties["ratio"] = {"type": "number", "format": "float"}
    emu = Emulator(spec=spec)
    cid = new_cid()
    data = {"event_type": "gateway.signal.received", "signal_name": "s", "ratio": 0.123456789}
    emu.insert_events([event(cid, event_data=data)])
    assert (await _read(emu, cid))["event_data"]["ratio"] == 0.12345679


def test_without_a_spec_any_event_type_is_taken() -> None:
    """Without a spec the emulator knows no event types and takes any payload whole."""
    emu = Emulator()
    assert emu.event_types is None
    emu.insert_events([event(new_cid(), "brand.new.type", event_data={"event_type": "x", "y": 1})])


def test_a_spec_without_the_union_is_refused(tmp_path: Path) -> None:
    """A spec whose AuditEventRequest has no discriminated event_data is a clear error."""
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"openapi": "3.0.3", "components": {"schemas": {}}}))
    with pytest.raises(ValueError, match="event_data union"):
        Emulator(spec=path)


def test_a_yaml_spec_file_is_read(tmp_path: Path) -> None:
    """spec= takes a YAML file path."""
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(PAYLOAD_SPEC))
    emu = Emulator(spec=path)
    assert emu.event_types == frozenset(
        {"gateway.signal.received", "gateway.crd.created", "aianalysis.phase.transition"}
    )


_COMMON = [
    "gateway.signal.received",
    "gateway.crd.created",
    "signalprocessing.signal.processed",
    "aianalysis.phase.transition",
    "workflowexecution.workflow.started",
    "orchestrator.lifecycle.completed",
    "notification.message.sent",
]


@pytest.mark.skipif(_upstream_spec() is None, reason="upstream spec not found (DATA_STORAGE_SPEC)")
@pytest.mark.parametrize("event_type", _COMMON)
async def test_the_upstream_spec_takes_make_events_samples(event_type: str) -> None:
    """With the upstream spec, make_event's sample of each common event type is stored."""
    emu = Emulator(spec=_upstream_spec())
    assert emu.event_types is not None
    assert event_type in emu.event_types
    cid = new_cid()
    async with httpx.AsyncClient(transport=emu.transport(), base_url="http://ds") as http:
        response = await http.post(EVENTS, json=make_event(cid, event_type))
    assert response.status_code == 201, response.text


@pytest.mark.skipif(_upstream_spec() is None, reason="upstream spec not found (DATA_STORAGE_SPEC)")
async def test_the_upstream_spec_refuses_an_unknown_event_type() -> None:
    """With the upstream spec, an event type it does not map is refused with the opaque 400."""
    emu = Emulator(spec=_upstream_spec())
    async with httpx.AsyncClient(transport=emu.transport(), base_url="http://ds") as http:
        response = await http.post(EVENTS, json=make_event(new_cid(), "brand.new.type"))
    assert response.status_code == 400
    assert response.json()["title"] == "Validation Error"


async def _post_raw(emu: Emulator, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(transport=emu.transport(), base_url="http://ds") as http:
        headers = {"Content-Type": "application/json"}
        return await http.post(EVENTS, content=body, headers=headers)


def _with_data(cid: str, data: bytes) -> bytes:
    body = json.dumps(event(cid, event_data="DATA")).encode()
    return body.replace(b'"DATA"', data)


async def test_nan_is_not_json() -> None:
    """NaN and Infinity are not JSON to Go: the validation 400."""
    response = await _post_raw(Emulator(), _with_data(new_cid(), b'{"event_type":"x","n":NaN}'))
    assert response.status_code == 400
    assert response.json()["title"] == "Validation Error"


async def test_a_lone_surrogate_escape_reads_back_as_the_replacement_character() -> None:
    """Go decodes an escaped lone surrogate as U+FFFD."""
    emu = Emulator()
    cid = new_cid()
    body = _with_data(cid, b'{"event_type":"x","s":"a\\ud800b"}')
    assert (await _post_raw(emu, body)).status_code == 201
    assert (await _read(emu, cid))["event_data"]["s"] == "a\ufffdb"


async def test_a_number_no_float64_holds_is_invalid_event_data() -> None:
    """A free-form number past float64's range fails the handler's map conversion."""
    big = b"1" + b"0" * 400
    response = await _post_raw(
        Emulator(), _with_data(new_cid(), b'{"event_type":"x","n":' + big + b"}")
    )
    assert response.status_code == 400
    assert response.json()["type"] == "https://kubernaut.ai/problems/invalid_event_data"
