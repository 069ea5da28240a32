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


def test_operations_exist_upstream(ours: Spec, upstream: Spec) -> None:
    """Every path and method we declare exists upstream with the same operationId."""
    problems = []
    for path, method, op in operations(ours):
        there = upstream["paths"].get(path, {}).get(method)
        if there is None:
            problems.append(f"{method.upper()} {path}: not upstream")
        elif there.get("operationId") != op.get("operationId"):
            problems.append(f"{method.upper()} {path}: operationId differs")
    assert problems == []


def test_parameters_match_upstream(ours: Spec, upstream: Spec) -> None:
    """Every parameter we declare exists upstream with the same schema and required-ness."""
    problems = []
    for path, method, op in operations(ours):
        theirs = _params(upstream, _upstream_op(upstream, path, method))
        for key, param in _params(ours, op).items():
            where = f"{method.upper()} {path} {key[1]}:{key[0]}"
            if param.get(SOURCE) == "service":
                continue
            if key not in theirs:
                problems.append(f"{where}: not upstream")
                continue
            if bool(param.get("required")) != bool(theirs[key].get("required")):
                problems.append(f"{where}: required-ness differs")
            problems += compare(ours, upstream, param["schema"], theirs[key]["schema"], where)
    assert problems == []


def test_request_bodies_match_upstream(ours: Spec, upstream: Spec) -> None:
    """Every request body we declare matches upstream's, media type and schema."""
    problems = []
    for path, method, op in operations(ours):
        if "requestBody" not in op:
            continue
        mine = resolve(ours, op["requestBody"])
        theirs = resolve(upstream, _upstream_op(upstream, path, method).get("requestBody"))
        where = f"{method.upper()} {path} body"
        if bool(mine.get("required")) != bool(theirs.get("required")):
            problems.append(f"{where}: required-ness differs")
        for media, content in mine["content"].items():
            other = theirs.get("content", {}).get(media)
            if other is None:
                problems.append(f"{where} {media}: not upstream")
                continue
            problems += compare(ours, upstream, content["schema"], other["schema"], where)
    assert problems == []


def test_responses_match_upstream(ours: Spec, upstream: Spec) -> None:
    """Every response we declare exists upstream with the same media types and schemas."""
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
                problems += compare(
                    ours, upstream, content["schema"], other["content"][media]["schema"], where
                )
    assert problems == []


def test_namesake_schemas_match_upstream(ours: Spec, upstream: Spec) -> None:
    """Each of our component schemas that upstream also names matches it."""
    theirs = upstream["components"]["schemas"]
    problems = []
    for name, schema in ours["components"]["schemas"].items():
        if name in theirs:
            problems += compare(ours, upstream, schema, theirs[name], name)
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
