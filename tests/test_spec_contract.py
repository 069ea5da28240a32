"""Our openapi/ spec is faithful to the upstream Data Storage spec in all it declares.

The upstream file is read from env ``DATA_STORAGE_SPEC``, else from
``../shared/reference/data-storage-v1.yaml`` beside the repository; without it these tests skip.
Elements marked ``x-kubernaut-source: service`` describe the running service where the upstream
file is silent, and are exempt.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
OURS = ROOT / "openapi" / "data-storage-audit.yaml"
DEFAULT_UPSTREAM = ROOT.parent / "shared" / "reference" / "data-storage-v1.yaml"
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
COMPARED = (
    "type",
    "format",
    "enum",
    "nullable",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "default",
    "pattern",
)
SOURCE = "x-kubernaut-source"
EVENTS = "/api/v1/audit/events"

Spec = dict[str, Any]


def _upstream_path() -> Path:
    configured = os.environ.get("DATA_STORAGE_SPEC")
    return Path(configured) if configured else DEFAULT_UPSTREAM


@pytest.fixture(scope="module")
def upstream() -> Spec:
    path = _upstream_path()
    if not path.is_file():
        pytest.skip(
            f"upstream Data Storage spec not found at {path}: set DATA_STORAGE_SPEC to check "
            "openapi/ against it"
        )
    spec: Spec = yaml.safe_load(path.read_text())
    return spec


@pytest.fixture(scope="module")
def ours() -> Spec:
    spec: Spec = yaml.safe_load(OURS.read_text())
    return spec


# -- schema comparison -----------------------------------------------------------------------


def resolve(spec: Spec, node: Any) -> dict[str, Any]:
    """Follow $ref and merge allOf, so inline and referenced schemas compare alike."""
    if not isinstance(node, dict):
        return {}
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local refs are supported, got {ref}"
        target: Any = spec
        for part in ref[2:].split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    if "allOf" in node:
        merged: dict[str, Any] = {k: v for k, v in node.items() if k != "allOf"}
        properties: dict[str, Any] = dict(merged.get("properties", {}))
        required: list[str] = list(merged.get("required", []))
        for part in node["allOf"]:
            sub = resolve(spec, part)
            properties.update(sub.get("properties", {}))
            required += [r for r in sub.get("required", []) if r not in required]
            merged.update({k: v for k, v in sub.items() if k not in ("properties", "required")})
        merged["properties"] = properties
        merged["required"] = required
        node = merged
    resolved: dict[str, Any] = node
    return resolved


def _norm(key: str, value: Any) -> Any:
    if key == "enum" and value is not None:
        return sorted(value)
    if key == "nullable":
        return bool(value)
    return value


def compare(ours: Spec, theirs: Spec, mine: Any, other: Any, where: str) -> list[str]:
    """Every constraint ``mine`` declares must hold in ``other``; returns the mismatches."""
    a = resolve(ours, mine)
    b = resolve(theirs, other)
    if a.get(SOURCE) == "service":
        return []
    if "oneOf" in b and "discriminator" in b:
        # Upstream's event_data is a oneOf of payload schemas chosen by a discriminator; ours is
        # an open object that declares at most the discriminator property (required when
        # declared: writes), or nothing at all (reads, which accept every payload).
        prop = b["discriminator"]["propertyName"]
        problems = []
        declared = set(a.get("properties", {}))
        if a.get("type") != "object" or not declared <= {prop}:
            problems.append(f"{where}: expected an object declaring at most {prop!r}")
        if declared and prop not in a.get("required", []):
            problems.append(f"{where}: the discriminator {prop!r} must be required")
        return problems
    problems = [
        f"{where}: {key} is {_norm(key, a.get(key))!r} here, {_norm(key, b.get(key))!r} upstream"
        for key in COMPARED
        if _norm(key, a.get(key)) != _norm(key, b.get(key))
    ]
    for name, prop in a.get("properties", {}).items():
        if name not in b.get("properties", {}):
            if resolve(ours, prop).get(SOURCE) != "service":
                problems.append(f"{where}.{name}: not declared upstream")
            continue
        problems += compare(ours, theirs, prop, b["properties"][name], f"{where}.{name}")
        if (name in a.get("required", [])) != (name in b.get("required", [])):
            problems.append(f"{where}.{name}: required-ness differs")
    if "items" in a:
        problems += compare(ours, theirs, a["items"], b.get("items"), f"{where}[]")
    if isinstance(a.get("additionalProperties"), dict):
        problems += compare(
            ours,
            theirs,
            a["additionalProperties"],
            b.get("additionalProperties"),
            f"{where}{{*}}",
        )
    return problems


def operations(spec: Spec) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in spec["paths"].items()
        if item.get(SOURCE) != "service"
        for method, op in item.items()
        if method in METHODS and op.get(SOURCE) != "service"
    ]


def _upstream_op(upstream: Spec, path: str, method: str) -> dict[str, Any]:
    op: dict[str, Any] = upstream["paths"][path][method]
    return op


def _params(spec: Spec, op: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    found = (resolve(spec, p) for p in op.get("parameters", []))
    return {(p["name"], p["in"]): p for p in found}


# -- the contract ----------------------------------------------------------------------------

#: Every audit operation of the service: the SDK speaks all of them.
AUDIT_OPERATIONS = {
    ("get", EVENTS): "queryAuditEvents",
    ("post", EVENTS): "createAuditEvent",
    ("post", "/api/v1/audit/events/batch"): "createAuditEventsBatch",
    ("get", "/api/v1/audit/export"): "exportAuditEvents",
    ("post", "/api/v1/audit/verify-chain"): "verifyAuditChain",
    ("post", "/api/v1/audit/legal-hold"): "placeLegalHold",
    ("get", "/api/v1/audit/legal-hold"): "listLegalHolds",
    ("delete", "/api/v1/audit/legal-hold/{correlation_id}"): "releaseLegalHold",
    (
        "post",
        "/api/v1/audit/remediation-requests/{correlation_id}/reconstruct",
    ): "reconstructRemediationRequest",
}


def missing(ours: Spec, theirs: Spec, mine: Any, other: Any, where: str) -> list[str]:
    """Every property ``other`` declares (recursively) must be declared by ``mine`` too."""
    a = resolve(ours, mine)
    b = resolve(theirs, other)
    if "oneOf" in b or a.get(SOURCE) == "service":
        return []  # event_data payloads are open on our side by design
    problems = []
    for name, prop in b.get("properties", {}).items():
        if name not in a.get("properties", {}):
            problems.append(f"{where}.{name}: upstream declares it, we do not")
            continue
        problems += missing(ours, theirs, a["properties"][name], prop, f"{where}.{name}")
    if "items" in b and "items" in a:
        problems += missing(ours, theirs, a["items"], b["items"], f"{where}[]")
    return problems


def existence_problems(ours: Spec, upstream: Spec) -> list[str]:
    problems = []
    for path, method, op in operations(ours):
        there = upstream["paths"].get(path, {}).get(method)
        if there is None:
            problems.append(f"{method.upper()} {path}: not upstream")
        elif there.get("operationId") != op.get("operationId"):
            problems.append(f"{method.upper()} {path}: operationId differs")
    return problems


def parameter_problems(ours: Spec, upstream: Spec) -> list[str]:
    problems = []
    for path, method, op in operations(ours):
        theirs = _params(upstream, _upstream_op(upstream, path, method))
        mine = _params(ours, op)
        for key, param in mine.items():
            where = f"{method.upper()} {path} {key[1]}:{key[0]}"
            if param.get(SOURCE) == "service":
                continue
            if key not in theirs:
                problems.append(f"{where}: not upstream")
                continue
            if bool(param.get("required")) != bool(theirs[key].get("required")):
                problems.append(f"{where}: required-ness differs")
            problems += compare(ours, upstream, param["schema"], theirs[key]["schema"], where)
        problems += [
            f"{method.upper()} {path} {key[1]}:{key[0]}: upstream takes it, we do not declare it"
            for key in theirs
            if key not in mine
        ]
    return problems


def body_problems(ours: Spec, upstream: Spec) -> list[str]:
    problems = []
    for path, method, op in operations(ours):
        theirs = resolve(upstream, _upstream_op(upstream, path, method).get("requestBody"))
        where = f"{method.upper()} {path} body"
        if "requestBody" not in op:
            if theirs:
                problems.append(f"{where}: upstream takes a body, we do not declare it")
            continue
        mine = resolve(ours, op["requestBody"])
        if bool(mine.get("required")) != bool(theirs.get("required")):
            problems.append(f"{where}: required-ness differs")
        for media, content in mine["content"].items():
            other = theirs.get("content", {}).get(media)
            if other is None:
                problems.append(f"{where} {media}: not upstream")
                continue
            problems += compare(ours, upstream, content["schema"], other["schema"], where)
            problems += missing(ours, upstream, content["schema"], other["schema"], where)
    return problems


def response_problems(ours: Spec, upstream: Spec) -> list[str]:
    problems = []
    for path, method, op in operations(ours):
        theirs = _upstream_op(upstream, path, method)["responses"]
        for status, response in op["responses"].items():
            where = f"{method.upper()} {path} -> {status}"
            if status not in theirs:
                problems.append(f"{where}: not upstream")
                continue
            other = resolve(upstream, theirs[status])
            for media, content in resolve(ours, response).get("content", {}).items():
                if media not in other.get("content", {}):
                    problems.append(f"{where} {media}: not upstream")
                    continue
                schema = other["content"][media]["schema"]
                problems += compare(ours, upstream, content["schema"], schema, where)
                if str(status).startswith("2"):
                    problems += missing(ours, upstream, content["schema"], schema, where)
    return problems


def test_operations_exist_upstream(ours: Spec, upstream: Spec) -> None:
    """Every path and method we declare exists upstream with the same operationId."""
    assert existence_problems(ours, upstream) == []


def test_every_audit_operation_declared(ours: Spec, upstream: Spec) -> None:
    """Our spec declares all nine audit operations, with upstream's operationIds."""
    declared = {(method, path): op["operationId"] for path, method, op in operations(ours)}
    assert {k: v for k, v in declared.items() if k in AUDIT_OPERATIONS} == AUDIT_OPERATIONS
    for (method, path), operation_id in AUDIT_OPERATIONS.items():
        assert _upstream_op(upstream, path, method)["operationId"] == operation_id


def test_parameters_match_upstream(ours: Spec, upstream: Spec) -> None:
    """Every parameter matches upstream's (schema, required-ness), and none is missing."""
    assert parameter_problems(ours, upstream) == []


def test_request_bodies_match_upstream(ours: Spec, upstream: Spec) -> None:
    """Every request body matches upstream's, media type, schema and every property."""
    assert body_problems(ours, upstream) == []


def test_responses_match_upstream(ours: Spec, upstream: Spec) -> None:
    """Every response exists upstream with the same media types and schemas; success bodies
    declare every property upstream's do."""
    assert response_problems(ours, upstream) == []


def test_namesake_schemas_match_upstream(ours: Spec, upstream: Spec) -> None:
    """Each of our component schemas that upstream also names matches it."""
    theirs = upstream["components"]["schemas"]
    problems = []
    for name, schema in ours["components"]["schemas"].items():
        if name in theirs:
            problems += compare(ours, upstream, schema, theirs[name], name)
            problems += missing(ours, upstream, schema, theirs[name], name)
    assert problems == []


def test_no_query_parameter_missing(ours: Spec, upstream: Spec) -> None:
    """Every query parameter upstream's event query takes is in our spec."""
    mine = _params(ours, ours["paths"][EVENTS]["get"])
    theirs = _params(upstream, _upstream_op(upstream, EVENTS, "get"))
    assert sorted(k for k in theirs if k[1] == "query" and k not in mine) == []


@pytest.mark.parametrize("schema", ["AuditEvent", "AuditEventRequest"])
def test_no_event_field_missing(ours: Spec, upstream: Spec, schema: str) -> None:
    """Every property of upstream's event schemas is in ours."""
    theirs = resolve(upstream, upstream["components"]["schemas"][schema])["properties"]
    mine = resolve(ours, ours["components"]["schemas"][schema])["properties"]
    assert sorted(set(theirs) - set(mine)) == []


def test_service_only_elements_few_and_documented(ours: Spec) -> None:
    """Few elements are exempt as service-only, each documented with a description."""
    found: list[tuple[str, Any]] = []

    def visit(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if SOURCE in node:
                found.append((where, node))
            for key, value in node.items():
                visit(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                visit(value, f"{where}/{index}")

    visit(ours, "#")
    assert 0 < len(found) <= 5, [w for w, _ in found]
    for where, node in found:
        assert node[SOURCE] == "service", where
        ops = [v for k, v in node.items() if k in METHODS]
        documented = node.get("description") or (all(o.get("description") for o in ops) and ops)
        assert documented, f"{where} is exempt from the contract but not described"
    assert SOURCE in ours["info"]["description"]


def test_comparator_detects_drift(ours: Spec, upstream: Spec) -> None:
    """The comparison is not vacuous: a changed bound or a dropped field is reported."""
    drifted = copy.deepcopy(ours)
    request = drifted["components"]["schemas"]["AuditEventRequest"]
    request["properties"]["correlation_id"]["maxLength"] = 256
    request["properties"]["made_up"] = {"type": "string"}
    request["required"].remove("event_action")
    problems = compare(
        drifted,
        upstream,
        request,
        upstream["components"]["schemas"]["AuditEventRequest"],
        "AuditEventRequest",
    )
    assert any("correlation_id: maxLength" in p for p in problems)
    assert any("made_up: not declared upstream" in p for p in problems)
    assert any("event_action: required-ness" in p for p in problems)


def test_contract_detects_drift_in_audit_trail_operations(ours: Spec, upstream: Spec) -> None:
    """A broken copy of the export, verify-chain, legal-hold and reconstruct declarations fails
    each check that covers it."""
    drifted = copy.deepcopy(ours)
    paths = drifted["paths"]
    schemas = drifted["components"]["schemas"]
    export = paths["/api/v1/audit/export"]["get"]
    limit = next(p for p in export["parameters"] if p["name"] == "limit")
    limit["schema"]["maximum"] = 5000
    export["parameters"] = [p for p in export["parameters"] if p["name"] != "redact_pii"]
    del schemas["AuditExportEvent"]["properties"]["hash_chain_valid"]
    schemas["HashChainVerification"]["properties"]["chain_integrity_percentage"]["format"] = (
        "double"
    )
    schemas["VerifyChainRequest"]["required"] = []
    schemas["PlaceLegalHoldRequest"]["properties"]["reason"]["type"] = "integer"
    release = paths["/api/v1/audit/legal-hold/{correlation_id}"]["delete"]
    release["requestBody"]["required"] = False
    schemas["ValidationResult"]["properties"]["completeness"]["maximum"] = 99
    reconstruct = paths["/api/v1/audit/remediation-requests/{correlation_id}/reconstruct"]["post"]
    reconstruct["responses"]["409"] = reconstruct["responses"]["404"]
    paths["/api/v1/audit/legal-hold"]["get"]["operationId"] = "getLegalHolds"

    params = "\n".join(parameter_problems(drifted, upstream))
    bodies = "\n".join(body_problems(drifted, upstream))
    responses = "\n".join(response_problems(drifted, upstream))
    assert "query:limit: maximum is 5000 here, 10000 upstream" in params
    assert "query:redact_pii: upstream takes it, we do not declare it" in params
    assert ".hash_chain_valid: upstream declares it, we do not" in responses
    assert "chain_integrity_percentage: format is 'double' here, 'float' upstream" in responses
    assert "verify-chain body.correlation_id: required-ness differs" in bodies
    assert "legal-hold body.reason: type is 'integer' here, 'string' upstream" in bodies
    assert "legal-hold/{correlation_id} body: required-ness differs" in bodies
    assert "completeness: maximum is 99 here, 100 upstream" in responses
    assert "reconstruct -> 409: not upstream" in responses
    assert "GET /api/v1/audit/legal-hold: operationId differs" in existence_problems(
        drifted, upstream
    )
