"""kubernaut-audit codegen, PayloadRegistry and typed payloads on the clients.

Models are generated into tmp_path, never into the repository: from a small spec of our own
(always), and from the upstream Data Storage spec when it is present
(``../shared/reference/data-storage-v1.yaml``, or env ``DATA_STORAGE_SPEC``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml
from payload_samples import (
    discriminator_mapping,
    envelope,
    page,
    typed_page_events,
    upstream_spec_path,
)

from kubernaut_audit import AsyncAuditClient, AuditClient, AuditEvent, PayloadRegistry
from kubernaut_audit._cli import main
from kubernaut_audit._codegen import CodegenError, collect
from kubernaut_audit.models import OpenEnum, PayloadModel

pytest.importorskip("datamodel_code_generator", reason="needs the codegen extra")

S = "#/components/schemas/"

# A spec of our own with what the upstream one has: a shared payload, a payload whose schema
# omits event_type, a payload only the oneOf names (its event_type enum gives its types), a
# nested $ref, a closed object, an open one, constraints, an enum, a property named like a
# keyword. The union lives in a nested schema, not in AuditEventRequest.
MINI_SPEC: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {"title": "Mini Data Storage", "version": "0.1.0"},
    "paths": {},
    "components": {
        "schemas": {
            "StoredRecord": {
                "type": "object",
                "properties": {"event": {"$ref": f"{S}Envelope"}},
            },
            "Envelope": {
                "type": "object",
                "required": ["event_type", "event_data"],
                "properties": {
                    "event_type": {"type": "string"},
                    "event_data": {"$ref": f"{S}Payload"},
                },
            },
            "Payload": {
                "oneOf": [
                    {"$ref": f"{S}PingPayload"},
                    {"$ref": f"{S}PongPayload"},
                    {"$ref": f"{S}EchoPayload"},
                ],
                "discriminator": {
                    "propertyName": "event_type",
                    "mapping": {
                        "demo.ping.sent": f"{S}PingPayload",
                        "demo.ping.repeated": f"{S}PingPayload",
                        "demo.pong.sent": "PongPayload",
                    },
                },
            },
            "PingPayload": {
                "type": "object",
                "additionalProperties": False,
                "required": ["event_type", "target", "level"],
                "properties": {
                    "event_type": {"type": "string", "enum": ["demo.ping.sent"]},
                    "target": {"type": "string", "maxLength": 5},
                    "level": {"type": "string", "enum": ["low", "high"]},
                    "pattern": {"type": "string", "pattern": "^[a-z]+$"},
                    "detail": {"$ref": f"{S}Detail"},
                },
            },
            "PongPayload": {
                "type": "object",
                "required": ["latency_ms"],
                "properties": {
                    "latency_ms": {"type": "integer", "minimum": 0},
                    "at": {"type": "string", "format": "date-time"},
                },
            },
            "EchoPayload": {
                "type": "object",
                "additionalProperties": True,
                "required": ["event_type", "text"],
                "properties": {
                    "event_type": {"type": "string", "enum": ["demo.echo.sent"]},
                    "text": {"type": "string"},
                },
            },
            "Detail": {
                "type": "object",
                "additionalProperties": False,
                "required": ["code"],
                "properties": {"code": {"type": "integer"}},
            },
            "Unrelated": {"type": "object", "properties": {"x": {"type": "string"}}},
        }
    },
}


def _import(path: Path, name: str) -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pydantic resolves the postponed annotations through it
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[name]


@pytest.fixture(scope="session")
def mini_spec(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mini") / "mini-storage.yaml"
    path.write_text(yaml.safe_dump(MINI_SPEC, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def mini_file(mini_spec: Path) -> Path:
    output = mini_spec.parent / "mini_payloads.py"
    assert main(["codegen", "--spec", str(mini_spec), "--output", str(output)]) == 0
    return output


@pytest.fixture(scope="session")
def mini(mini_file: Path) -> Iterator[ModuleType]:
    yield from _import(mini_file, "mini_payloads")


@pytest.fixture(scope="session")
def upstream_spec() -> dict[str, Any]:
    path = upstream_spec_path()
    if path is None:
        pytest.skip(
            "upstream Data Storage spec not found: put it at ../shared/reference/"
            "data-storage-v1.yaml or set DATA_STORAGE_SPEC"
        )
    spec: dict[str, Any] = yaml.safe_load(path.read_bytes())
    return spec


@pytest.fixture(scope="session")
def upstream_file(upstream_spec: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = upstream_spec_path()
    assert path is not None
    output = tmp_path_factory.mktemp("upstream") / "ds_payloads.py"
    assert main(["codegen", "--spec", str(path), "--output", str(output)]) == 0
    return output


@pytest.fixture(scope="session")
def upstream(upstream_file: Path) -> Iterator[ModuleType]:
    yield from _import(upstream_file, "ds_payloads")


def _transport(body: bytes) -> httpx.MockTransport:
    headers = {"content-type": "application/json"}
    return httpx.MockTransport(lambda request: httpx.Response(200, content=body, headers=headers))


def _query(body: bytes, registry: PayloadRegistry | None) -> list[AuditEvent]:
    with AuditClient(transport=_transport(body), payloads=registry) as client:
        return client.query_audit_events(limit=1000).events


# -- the upstream spec -----------------------------------------------------------------------


def test_every_discriminator_value_maps_to_its_model(
    upstream: ModuleType, upstream_spec: dict[str, Any]
) -> None:
    """REGISTRY maps every event_type of the spec's mapping to the model of its schema."""
    mapping = discriminator_mapping(upstream_spec)
    registry = upstream.REGISTRY
    assert set(registry) == set(mapping)
    for event_type, schema in mapping.items():
        assert registry[event_type].__name__ == schema
        assert issubclass(registry[event_type], PayloadModel)
    assert len(set(registry.values())) < len(registry)  # several types share a payload


def test_page_of_every_event_type_decodes_typed(
    upstream: ModuleType, upstream_spec: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """A 1,000-event page covering every event type comes back with every payload typed."""
    events = typed_page_events(upstream_spec, 1000)
    assert {e["event_type"] for e in events} == set(upstream.REGISTRY)
    with caplog.at_level(logging.WARNING, logger="kubernaut_audit"):
        decoded = _query(page(events), upstream.REGISTRY)
    assert len(decoded) == 1000
    untyped = {e.event_type for e in decoded if not isinstance(e.payload, PayloadModel)}
    assert untyped == set()
    for event in decoded:
        assert type(event.payload) is upstream.REGISTRY[event.event_type]
        assert isinstance(event.event_data, dict)
    assert caplog.records == []


def test_payload_schema_without_event_type_gets_the_envelopes(
    upstream: ModuleType, upstream_spec: dict[str, Any]
) -> None:
    """Schemas that omit event_type still read it: the server writes it into every payload."""
    schemas = upstream_spec["components"]["schemas"]
    omitting = {
        event_type
        for event_type, name in discriminator_mapping(upstream_spec).items()
        if "event_type" not in schemas[name].get("properties", {})
    }
    assert omitting, "the upstream spec no longer has payloads without event_type"
    events = [e for e in typed_page_events(upstream_spec, 1000) if e["event_type"] in omitting]
    for event in _query(page(events), upstream.REGISTRY):
        assert event.data_as(upstream.REGISTRY[event.event_type]).event_type == event.event_type


@pytest.mark.slow
def test_generated_module_passes_mypy_strict(upstream_file: Path, tmp_path: Path) -> None:
    """mypy --strict finds nothing to say about the generated upstream module."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            str(upstream_file),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_header_names_the_spec_and_its_hash(upstream_file: Path) -> None:
    """The module says it is generated, from which spec file, and that file's sha256."""
    path = upstream_spec_path()
    assert path is not None
    head = upstream_file.read_text().splitlines()[:4]
    assert "DO NOT EDIT" in head[0]
    assert path.name in head[0]
    assert f"# spec-sha256: {hashlib.sha256(path.read_bytes()).hexdigest()}" in head


# -- leniency --------------------------------------------------------------------------------


def test_unknown_event_type_stays_a_dict(mini: ModuleType) -> None:
    """An event type the registry does not know keeps its payload as the plain dict."""
    data = {"event_type": "demo.new.thing", "anything": [1, 2]}
    (event,) = _query(page([envelope(0, "demo.new.thing", data)]), mini.REGISTRY)
    assert event.payload == data
    assert event.payload is event.event_data


def test_extra_fields_and_unknown_enum_values_are_kept(mini: ModuleType) -> None:
    """A payload with fields and enum values the spec does not list is typed and keeps them."""
    data: dict[str, Any] = {"event_type": "demo.ping.sent", "target": "a-long-target"}
    data["level"] = "extreme"
    data |= {"detail": {"code": 7, "hint": "new"}, "added_later": True}
    payload = mini.REGISTRY.parse("demo.ping.sent", data)
    assert isinstance(payload, mini.PingPayload)
    assert payload.model_extra == {"added_later": True}
    assert isinstance(payload.level, OpenEnum)
    assert payload.level == "extreme"
    assert not payload.level.is_known
    assert payload.detail is not None
    assert payload.detail.model_extra == {"hint": "new"}
    assert payload.target == "a-long-target"  # maxLength is not checked on read


def test_open_objects_rely_on_the_lenient_base(mini: ModuleType, mini_file: Path) -> None:
    """additionalProperties: true adds no model_config of its own; extras are kept as ever."""
    assert "model_config" not in mini_file.read_text()
    data = {"event_type": "demo.echo.sent", "text": "hi", "added_later": 1}
    payload = mini.REGISTRY.parse("demo.echo.sent", data)
    assert isinstance(payload, mini.EchoPayload)
    assert payload.model_extra == {"added_later": 1}


def test_misfit_payload_stays_untyped_and_is_logged_once(
    mini: ModuleType, caplog: pytest.LogCaptureFixture
) -> None:
    """Many payloads missing a required field stay dicts, with one warning for their type."""
    registry = PayloadRegistry(mini.REGISTRY)  # a fresh one: nothing reported yet
    misfit = {"event_type": "demo.ping.sent", "level": "low"}  # no target
    fine = {"event_type": "demo.pong.sent", "latency_ms": 3}
    events = [envelope(i, "demo.ping.sent", misfit) for i in range(200)]
    events += [envelope(200 + i, "demo.pong.sent", fine) for i in range(5)]
    with caplog.at_level(logging.WARNING, logger="kubernaut_audit"):
        decoded = _query(page(events), registry)
        payloads = [e.payload for e in decoded]
    assert [type(p) for p in payloads[:200]] == [dict] * 200
    assert all(isinstance(p, mini.PongPayload) for p in payloads[200:])
    assert len(caplog.records) == 1
    record = caplog.records[0]
    assert "demo.ping.sent" in record.getMessage()
    assert "target" in record.getMessage()


def test_shared_and_implicit_mappings(mini: ModuleType) -> None:
    """Several types share a model; a oneOf member absent from the mapping gets its enum's."""
    assert mini.REGISTRY["demo.ping.sent"] is mini.REGISTRY["demo.ping.repeated"]
    assert mini.REGISTRY["demo.echo.sent"] is mini.EchoPayload
    assert sorted(mini.REGISTRY) == [
        "demo.echo.sent",
        "demo.ping.repeated",
        "demo.ping.sent",
        "demo.pong.sent",
    ]
    assert not hasattr(mini, "Unrelated")


def test_event_type_comes_from_the_envelope_when_the_payload_omits_it(mini: ModuleType) -> None:
    """A payload without event_type is typed with the envelope's."""
    (event,) = _query(page([envelope(0, "demo.pong.sent", {"latency_ms": 4})]), mini.REGISTRY)
    assert isinstance(event.payload, mini.PongPayload)
    assert event.payload.event_type == "demo.pong.sent"
    assert event.event_data == {"latency_ms": 4}


# -- data_as and the clients -----------------------------------------------------------------


def test_data_as_validates_without_a_registry(mini: ModuleType) -> None:
    """data_as(Model) types event_data of an event from a client without a registry."""
    (event,) = _query(page([envelope(0, "demo.pong.sent", {"latency_ms": 4})]), None)
    assert event.payload is event.event_data
    pong = event.data_as(mini.PongPayload)
    assert pong.latency_ms == 4
    assert pong.event_type == "demo.pong.sent"


def test_data_as_returns_the_payload_the_registry_parsed(mini: ModuleType) -> None:
    """data_as(Model) on a typed event returns that same model instance."""
    data = {"event_type": "demo.echo.sent", "text": "hi"}
    (event,) = _query(page([envelope(0, "demo.echo.sent", data)]), mini.REGISTRY)
    assert event.data_as(mini.EchoPayload) is event.payload


def test_typed_events_dump_and_compare_as_untyped_ones(mini: ModuleType) -> None:
    """The registry leaves no trace in dumps or equality."""
    body = page([envelope(0, "demo.echo.sent", {"event_type": "demo.echo.sent", "text": "hi"})])
    (typed,) = _query(body, mini.REGISTRY)
    (plain,) = _query(body, None)
    assert isinstance(typed.payload, mini.EchoPayload)
    assert typed == plain
    assert typed.model_dump() == plain.model_dump()


@pytest.mark.anyio
async def test_async_client_types_payloads(mini: ModuleType) -> None:
    """AsyncAuditClient(payloads=...) returns events with typed payloads too."""
    body = page([envelope(0, "demo.echo.sent", {"event_type": "demo.echo.sent", "text": "hi"})])
    async with AsyncAuditClient(transport=_transport(body), payloads=mini.REGISTRY) as client:
        events = await client.list_audit_events(correlation_id="rr-0000")
    assert isinstance(events[0].payload, mini.EchoPayload)


# -- finding the union, and the command ------------------------------------------------------


def test_union_found_outside_audit_event_request() -> None:
    """The event_data union is found in whichever component schema holds it."""
    found = collect(MINI_SPEC)
    assert found.mapping["demo.pong.sent"] == "PongPayload"
    assert set(found.schemas) == {"PingPayload", "PongPayload", "EchoPayload", "Detail"}
    ping = found.schemas["PingPayload"]
    assert "additionalProperties" not in ping
    assert ping["properties"]["pattern"] == {"type": "string"}  # a property, not a keyword


def test_spec_without_union_is_refused() -> None:
    """A spec with no event_data discriminated on event_type is an error that says so."""
    spec = {"openapi": "3.0.3", "components": {"schemas": {"A": {"type": "object"}}}}
    with pytest.raises(CodegenError, match="no event_data union"):
        collect(spec)


def test_cli_writes_the_module_and_exits_0(mini_file: Path, mini_spec: Path) -> None:
    """codegen writes an importable module with REGISTRY and reports what it covers."""
    text = mini_file.read_text()
    assert text.startswith("# GENERATED by `kubernaut-audit codegen` from mini-storage.yaml")
    assert hashlib.sha256(mini_spec.read_bytes()).hexdigest() in text
    assert "REGISTRY = PayloadRegistry(" in text
    compile(text, str(mini_file), "exec")


def test_cli_missing_spec_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A spec path that does not exist is a usage error (exit 2), and nothing is written."""
    output = tmp_path / "out.py"
    code = main(["codegen", "--spec", str(tmp_path / "nope.yaml"), "--output", str(output)])
    assert code == 2
    assert "no spec file" in capsys.readouterr().err
    assert not output.exists()


def test_cli_spec_without_union_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A spec without an event_data union is a usage error (exit 2)."""
    spec = tmp_path / "empty.json"
    spec.write_text(json.dumps({"openapi": "3.0.3", "components": {"schemas": {}}}))
    assert main(["codegen", "--spec", str(spec), "--output", str(tmp_path / "o.py")]) == 2
    assert "no event_data union" in capsys.readouterr().err


def test_cli_without_the_extra_exits_2(
    mini_spec: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without datamodel-code-generator the command says which extra to install, in one line."""
    monkeypatch.setitem(sys.modules, "datamodel_code_generator", None)
    code = main(["codegen", "--spec", str(mini_spec), "--output", str(tmp_path / "o.py")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "install kubernaut-audit[codegen]" in err
