"""``redact_pii=true`` as the service applies it to an export (after hashing and signing).

Three text patterns, in this order: e-mail addresses (``u***@d***.c***``), anything shaped
like an IPv4 address (first octet kept), and runs that look like a phone number with at least
eleven digits. ``exported_by`` goes through the patterns whole. In ``event_data`` only values
under 23 key names are touched, at any depth of objects and of objects inside arrays: a string
value through the patterns (so ``"alice"`` or an SSN stays as it is), an object or array value
with every string inside it through the patterns. Every other key is left alone, whatever it
holds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

PII_FIELDS: Final = frozenset(
    {
        "email",
        "user_email",
        "userEmail",
        "sender_email",
        "recipient_email",
        "phone",
        "phone_number",
        "phoneNumber",
        "mobile",
        "ip",
        "ip_address",
        "ipAddress",
        "source_ip",
        "sourceIP",
        "client_ip",
        "clientIP",
        "remote_addr",
        "remoteAddr",
        "ssn",
        "social_security_number",
        "credit_card",
        "creditCard",
        "cc_number",
    }
)
_EMAIL = re.compile(r"[a-zA-Z0-9._%+\-]+@[a-zA-Z0-9.\-]+\.[a-zA-Z]{2,}")
_IPV4 = re.compile(r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b", re.ASCII)
# Go's \s is [\t\n\f\r ]: no vertical tab.
_PHONE = re.compile(
    r"\+?[0-9]{1,3}[-\t\n\f\r .]?\(?[0-9]{3}\)?[-\t\n\f\r .]?[0-9]{3}[-\t\n\f\r .]?[0-9]{4}"
)


def _email(match: re.Match[str]) -> str:
    local, _, domain = match.group(0).partition("@")
    parts = [(part[0] + "***") if part else "***" for part in domain.split(".")]
    return local[0] + "***@" + ".".join(parts)


def _ipv4(match: re.Match[str]) -> str:
    return match.group(0).split(".", 1)[0] + ".***.***.***"


def _phone(match: re.Match[str]) -> str:
    text = match.group(0)
    if not text.startswith("+"):
        return "***-***-****"
    code = "+"
    for char in text[1:]:
        if "0" <= char <= "9" and len(code) < 4:
            code += char
        elif len(code) > 1:
            break
    return code + "-***-****"


def redact_text(text: str) -> str:
    """A string through the three patterns."""
    if not text:
        return text
    text = _EMAIL.sub(_email, text)
    text = _IPV4.sub(_ipv4, text)
    return _PHONE.sub(_phone, text)


def _everything(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {key: _everything(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_everything(item) for item in value]
    return value


def redact_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """``event_data`` with the values under the PII key names redacted."""
    result: dict[str, Any] = {}
    for key, value in data.items():
        if key in PII_FIELDS:
            result[key] = redact_text(value) if isinstance(value, str) else _everything(value)
        elif isinstance(value, Mapping):
            result[key] = redact_data(value)
        elif isinstance(value, list):
            result[key] = [redact_data(v) if isinstance(v, Mapping) else v for v in value]
        else:
            result[key] = value
    return result
