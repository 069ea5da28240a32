"""The service's two checks of a request body, driven by OpenAPI 3.0 schemas.

First the validation middleware (kin-openapi) checks the decoded JSON against the spec: types,
required members, enums, lengths, bounds, patterns, the ``date-time`` regex and the
``event_data`` discriminator; any failure is the one opaque 400. It also fills in ``default``
values of absent members. Then the handler's typed decoder (ogen) parses what the regex could not
judge: real calendar dates, UUIDs, integers written as integers; a failure there is a different
400. The decoder keeps only the members a schema declares (unless the schema takes additional
properties), and re-encodes date-times to whole seconds and UUIDs in canonical form.

Only the keywords Data Storage's spec uses are implemented; an unknown keyword is ignored, as
kin-openapi ignores it.
"""

from __future__ import annotations

import copy
import json
import math
import re
import struct
import uuid
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Final

Schema = Mapping[str, Any]

_DATE_TIME: Final = re.compile(
    r"^[0-9]{4}-(0[1-9]|10|11|12)-(0[1-9]|[12][0-9]|3[01])T([0-1][0-9]|2[0-3]):[0-5][0-9]:"
    r"([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)([0-1][0-9]|2[0-3]):[0-5][0-9])$"
)
_DATE: Final = re.compile(r"^[0-9]{4}-(0[1-9]|10|11|12)-(0[1-9]|[12][0-9]|3[01])$")
_ZERO: Final = timedelta(0)
_HEX32: Final = re.compile(r"[0-9a-fA-F]{32}")
_FORMAT_RANGES: Final = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "float": (-3.4028234663852886e38, 3.4028234663852886e38),
}


class SchemaViolation(ValueError):
    """The validation middleware refuses the request (the opaque 400)."""


class DecodeFailure(ValueError):
    """The typed decoder cannot parse a value the middleware let through."""


class Spec:
    """A spec's schemas, for resolving ``$ref``."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document

    def resolve(self, schema: Schema) -> Schema:
        seen: set[str] = set()
        while "$ref" in schema:
            ref = str(schema["$ref"])
            if ref in seen or not ref.startswith("#/"):
                raise ValueError(f"unsupported or cyclic $ref {ref!r}")
            seen.add(ref)
            node: Any = self.document
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
            schema = node
        return schema


def load_document(source: str | Path | Mapping[str, Any]) -> Mapping[str, Any]:
    """An OpenAPI document from a mapping, a JSON file, or a YAML file (needs PyYAML)."""
    if isinstance(source, Mapping):
        return source
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read the spec {path}: {exc.strerror or exc}") from None
    try:
        document = json.loads(text)
    except ValueError:
        try:
            import yaml
        except ImportError:
            raise ImportError(
                f"{path} is not JSON; reading a YAML spec needs PyYAML "
                "(pip install pyyaml, or the codegen extra)"
            ) from None
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{path}: neither JSON nor YAML: {exc}") from None
    if not isinstance(document, Mapping):
        raise TypeError(f"{path}: not an OpenAPI document")
    return document


# -- the validation middleware ----------------------------------------------------------------


def validate(spec: Spec, schema: Schema, value: Any, where: str = "$") -> None:
    """Check ``value`` as kin-openapi does, filling ``default`` members in place.

    Raises SchemaViolation naming the first failure.
    """
    schema = spec.resolve(schema)
    if value is None:
        if schema.get("nullable") or not _declares_type(spec, schema):
            return
        raise SchemaViolation(f"{where}: null is not allowed")
    kind = schema.get("type")
    if kind is not None and not _is_type(kind, value):
        raise SchemaViolation(f"{where}: not of type {kind}")
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        raise SchemaViolation(f"{where}: not one of the enum values")
    if isinstance(value, str):
        _validate_string(schema, value, where)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _validate_number(schema, value, where)
    elif isinstance(value, dict):
        _validate_object(spec, schema, value, where)
    elif isinstance(value, list):
        _validate_array(spec, schema, value, where)
    for part in schema.get("allOf") or ():
        validate(spec, part, value, where)
    if "oneOf" in schema or "anyOf" in schema:
        _validate_union(spec, schema, value, where)
    if "not" in schema and _passes(spec, schema["not"], value):
        raise SchemaViolation(f"{where}: matches a schema it must not")


def _declares_type(spec: Spec, schema: Schema) -> bool:
    if "type" in schema:
        return True
    return any(_declares_type(spec, spec.resolve(part)) for part in schema.get("allOf") or ())


def _is_type(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "object":
        return isinstance(value, dict)
    if kind == "array":
        return isinstance(value, list)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    # The middleware decodes numbers into float64: 1.0 is an integer to it.
    return kind == "number" or isinstance(value, int) or value.is_integer()


def _same(value: Any, option: Any) -> bool:
    if isinstance(value, bool) or isinstance(option, bool):
        return value is option
    return bool(value == option)


def _validate_string(schema: Schema, value: str, where: str) -> None:
    if len(value) < schema.get("minLength", 0):
        raise SchemaViolation(f"{where}: shorter than {schema['minLength']}")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        raise SchemaViolation(f"{where}: longer than {schema['maxLength']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        raise SchemaViolation(f"{where}: does not match {schema['pattern']}")
    pattern = {"date-time": _DATE_TIME, "date": _DATE}.get(schema.get("format", ""))
    if pattern is not None and not pattern.match(value):
        raise SchemaViolation(f"{where}: not a {schema['format']}")


def _validate_number(schema: Schema, value: float, where: str) -> None:
    low, high = _FORMAT_RANGES.get(schema.get("format", ""), (None, None))
    if low is not None and high is not None and not low <= value <= high:
        raise SchemaViolation(f"{where}: outside the range of {schema['format']}")
    if "minimum" in schema:
        minimum = schema["minimum"]
        if value < minimum or (schema.get("exclusiveMinimum") and value == minimum):
            raise SchemaViolation(f"{where}: below the minimum")
    if "maximum" in schema:
        maximum = schema["maximum"]
        if value > maximum or (schema.get("exclusiveMaximum") and value == maximum):
            raise SchemaViolation(f"{where}: above the maximum")
    step = schema.get("multipleOf")
    if step and not math.isclose(value / step, round(value / step)):
        raise SchemaViolation(f"{where}: not a multiple of {step}")


def _validate_object(spec: Spec, schema: Schema, value: dict[str, Any], where: str) -> None:
    properties: Mapping[str, Schema] = schema.get("properties") or {}
    for name in schema.get("required") or ():
        if name not in value:
            raise SchemaViolation(f"{where}: {name} is required")
    if len(value) < schema.get("minProperties", 0):
        raise SchemaViolation(f"{where}: too few members")
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        raise SchemaViolation(f"{where}: too many members")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in properties:
            validate(spec, properties[name], item, f"{where}.{name}")
        elif extra is False:
            raise SchemaViolation(f"{where}: unexpected member {name}")
        elif isinstance(extra, Mapping):
            validate(spec, extra, item, f"{where}.{name}")
    for name, sub in properties.items():
        sub = spec.resolve(sub)
        if name not in value and "default" in sub:
            value[name] = copy.deepcopy(sub["default"])


def _validate_array(spec: Spec, schema: Schema, value: list[Any], where: str) -> None:
    if len(value) < schema.get("minItems", 0):
        raise SchemaViolation(f"{where}: too few items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        raise SchemaViolation(f"{where}: too many items")
    if schema.get("uniqueItems"):
        seen = [json.dumps(item, sort_keys=True) for item in value]
        if len(set(seen)) != len(seen):
            raise SchemaViolation(f"{where}: items are not unique")
    items = schema.get("items")
    if items is not None:
        for index, item in enumerate(value):
            validate(spec, items, item, f"{where}[{index}]")


def _validate_union(spec: Spec, schema: Schema, value: Any, where: str) -> None:
    chosen = discriminated(spec, schema, value, where)
    if chosen is not None:
        validate(spec, chosen, value, where)
        return
    options = schema.get("oneOf") or schema.get("anyOf") or []
    passing = [option for option in options if _passes(spec, option, value)]
    if not passing or ("oneOf" in schema and len(passing) > 1):
        raise SchemaViolation(f"{where}: matches {len(passing)} of the alternatives")
    validate(spec, passing[0], value, where)


def discriminated(spec: Spec, schema: Schema, value: Any, where: str = "$") -> Schema | None:
    """The member of a discriminated union that ``value`` names, or None for a plain union.

    Raises SchemaViolation when the discriminator is missing or names no member.
    """
    discriminator = schema.get("discriminator")
    if not isinstance(discriminator, Mapping) or not isinstance(value, dict):
        return None
    name = discriminator["propertyName"]
    key = value.get(name)
    if not isinstance(key, str):
        raise SchemaViolation(f"{where}: the discriminator {name} is missing")
    target = union_members(schema).get(key)
    if target is None:
        raise SchemaViolation(f"{where}: {name} {key!r} names no schema")
    return {"$ref": target}


def union_members(schema: Schema) -> dict[str, str]:
    """Discriminator value → ``$ref`` of a discriminated union.

    The mapping first; a member it does not name answers to its schema's name.
    """
    declared = schema["discriminator"].get("mapping") or {}
    mapping = {str(key): str(ref) for key, ref in declared.items()}
    for option in schema.get("oneOf") or schema.get("anyOf") or ():
        ref = option.get("$ref") if isinstance(option, Mapping) else None
        if isinstance(ref, str) and ref not in mapping.values():
            mapping.setdefault(ref.rsplit("/", 1)[-1], ref)
    return mapping


def _passes(spec: Spec, schema: Schema, value: Any) -> bool:
    try:
        validate(spec, schema, copy.deepcopy(value))
    except SchemaViolation:
        return False
    return True


# -- the typed decoder --------------------------------------------------------------------------


def decode(spec: Spec, schema: Schema, value: Any, where: str = "$") -> Any:
    """``value`` (already validated) as the typed decoder re-encodes it.

    Raises DecodeFailure where the decoder cannot parse it.
    """
    schema = spec.resolve(schema)
    if value is None:
        return None
    kind = schema.get("type")
    if kind is None and "allOf" in schema:
        kind = next(
            (spec.resolve(part).get("type") for part in schema["allOf"] if "type" in part), None
        )
    if kind == "string":
        return decode_string(schema.get("format", ""), value, where)
    if kind == "integer":
        if not isinstance(value, int):
            raise DecodeFailure(f"{where}: an integer must be written without a fraction")
        return value
    if kind == "number":
        try:
            number = float(value)
        except OverflowError:
            raise DecodeFailure(f"{where}: outside the range of a float64") from None
        return _float32(number) if schema.get("format") == "float" else number
    if kind == "array":
        items = schema.get("items")
        if items is None:
            return value
        return [decode(spec, items, item, f"{where}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, dict) and (kind == "object" or "properties" in schema):
        return _decode_object(spec, schema, value, where)
    return value


def decode_string(form: str, value: str, where: str = "$") -> str:
    """A string of the given ``format`` as the typed decoder parses and re-encodes it."""
    if form == "date-time":
        return go_rfc3339(parse_date_time(value, where))
    if form == "date":
        try:
            return date.fromisoformat(value).isoformat()
        except ValueError:
            raise DecodeFailure(f"{where}: not a calendar date") from None
    if form == "uuid":
        return str(parse_uuid(value, where))
    return value


def parse_date_time(value: str, where: str = "$") -> datetime:
    """A date-time that passed the middleware's regex, as Go's RFC 3339 parser reads it."""
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DecodeFailure(f"{where}: not a real date-time") from None


def go_rfc3339(moment: datetime) -> str:
    """``time.RFC3339``: whole seconds, ``Z`` for a zero offset (the service runs in UTC)."""
    if moment.utcoffset() == _ZERO:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.replace(microsecond=0).isoformat()


def parse_uuid(value: str, where: str = "$") -> uuid.UUID:
    """A UUID in one of the forms Go's uuid.Parse takes (36, 38 with braces, 45 as a URN, 32)."""
    text = value
    if len(text) == 45 and text[:9].lower() == "urn:uuid:":
        text = text[9:]
    elif len(text) == 38 and text[0] == "{" and text[-1] == "}":
        text = text[1:-1]
    if len(text) == 36 and all(text[i] == "-" for i in (8, 13, 18, 23)):
        text = text.replace("-", "")
    if not _HEX32.fullmatch(text):
        raise DecodeFailure(f"{where}: not a UUID")
    return uuid.UUID(hex=text)


def _decode_object(spec: Spec, schema: Schema, value: dict[str, Any], where: str) -> Any:
    properties: dict[str, Schema] = dict(schema.get("properties") or {})
    extra = schema.get("additionalProperties")
    for part in schema.get("allOf") or ():
        part = spec.resolve(part)
        properties.update(part.get("properties") or {})
        extra = part.get("additionalProperties", extra)
    if not properties and extra is None:
        return value  # a free-form object: kept whole
    out: dict[str, Any] = {}
    for name, item in value.items():
        if name in properties:
            out[name] = decode(spec, properties[name], item, f"{where}.{name}")
        elif isinstance(extra, Mapping):
            out[name] = decode(spec, extra, item, f"{where}.{name}")
        elif extra is True:
            out[name] = item
    return out


def _float32(value: float) -> float:
    """The float64 of the shortest decimal that round-trips a float32, as Go prints float32s."""
    single = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        text = f"{single:.{digits}g}"
        if struct.unpack("f", struct.pack("f", float(text)))[0] == single:
            return float(text)
    return float(single)
