"""GET /api/v1/audit/export answers as the service does, traps included."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from trail_samples import EXPORT, USER, base_time, envelope, gateway_data, new_cid, plain_events

from kubernaut_audit.emulator import Emulator

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 3, 4, 5, 6, 7, 987654, tzinfo=UTC)
EVENT_KEYS = [
    "event_id",
    "version",
    "event_type",
    "event_timestamp",
    "event_category",
    "event_action",
    "event_outcome",
    "correlation_id",
    "event_data",
    "event_hash",
    "previous_event_hash",
    "hash_chain_valid",
    "legal_hold",
]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator(clock=lambda: NOW)
    yield emu
    emu.close()


@pytest.fixture
async def http(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://ds") as client:
        yield client


async def _export(http: httpx.AsyncClient, **params: Any) -> httpx.Response:
    return await http.get(EXPORT, params=params, headers=USER)


async def test_single_correlation_export_is_ordered_and_valid(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """One correlation id, whole chain on one page: ascending, every event valid, 13 keys."""
    cid = new_cid()
    ids = emulator.insert_events(plain_events(cid, 3))
    body = (await _export(http, correlation_id=cid)).json()
    assert [e["event_id"] for e in body["events"]] == ids
    assert all(list(e) == EVENT_KEYS for e in body["events"])
    assert all(e["hash_chain_valid"] for e in body["events"])
    assert body["hash_chain_verification"]["tampered_event_ids"] == []


async def test_body_key_order_and_trailing_newline(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """Top level, metadata and verification keys come in the service's order; a final \\n."""
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 1))
    response = await _export(http, correlation_id=cid)
    body = response.json()
    assert response.content.endswith(b"}\n")
    assert list(body) == ["export_metadata", "events", "hash_chain_verification"]
    assert list(body["export_metadata"]) == [
        "export_timestamp",
        "export_format",
        "query_filters",
        "total_events",
        "signature",
        "signature_algorithm",
        "certificate_fingerprint",
        "exported_by",
    ]
    assert list(body["hash_chain_verification"]) == [
        "total_events_verified",
        "valid_chain_events",
        "broken_chain_events",
        "chain_integrity_percentage",
        "verification_timestamp",
        "tampered_event_ids",
    ]


async def test_times_are_cut_to_whole_seconds(emulator: Emulator, http: httpx.AsyncClient) -> None:
    """Export, verification and event times lose their fractions; filters keep their offset."""
    cid = new_cid()
    event = plain_events(cid, 1)[0]
    event["event_timestamp"] = (base_time() + timedelta(microseconds=654321)).isoformat()
    emulator.insert_events([event])
    body = (
        await _export(http, correlation_id=cid, start_time="2020-01-01T10:00:00.5+02:00")
    ).json()
    assert body["export_metadata"]["export_timestamp"] == "2026-03-04T05:06:07Z"
    assert body["hash_chain_verification"]["verification_timestamp"] == "2026-03-04T05:06:07Z"
    assert "." not in body["events"][0]["event_timestamp"]
    assert body["export_metadata"]["query_filters"] == {
        "start_time": "2020-01-01T10:00:00+02:00",
        "correlation_id": cid,
        "offset": 0,
        "limit": 1000,
    }


async def test_total_events_counts_only_this_page(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """total_events is the page's size, not the number of matches; no has_more exists."""
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 5))
    body = (await _export(http, correlation_id=cid, limit=2)).json()
    assert body["export_metadata"]["total_events"] == 2
    assert "has_more" not in body["export_metadata"]


async def test_page_boundary_flags_the_first_event_after_the_cut(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """The second page's first event is 'broken': the check starts from "" on each page."""
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 4))
    body = (await _export(http, correlation_id=cid, limit=2, offset=2)).json()
    assert [e["hash_chain_valid"] for e in body["events"]] == [False, True]
    assert body["hash_chain_verification"]["chain_integrity_percentage"] == 50


async def test_category_filter_flags_the_event_after_a_gap(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """A second filter that cuts the chain makes a false 'broken' at the cut."""
    cid = new_cid()
    t = base_time()
    events = [
        envelope(cid, "gateway.signal.received", gateway_data(), t),
        envelope(
            cid,
            "orchestrator.lifecycle.created",
            {"rr_name": "r", "namespace": "n"},
            t + timedelta(seconds=1),
        ),
        envelope(cid, "gateway.signal.received", gateway_data(), t + timedelta(seconds=2)),
    ]
    emulator.insert_events(events)
    body = (await _export(http, correlation_id=cid, event_category="gateway")).json()
    assert [e["hash_chain_valid"] for e in body["events"]] == [True, False]


async def test_percentage_is_a_shortest_float32(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """Two valid events of three print as float32 66.666664."""
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 4))
    response = await _export(http, correlation_id=cid, offset=1)
    assert b'"chain_integrity_percentage":66.666664,' in response.content


async def test_empty_page_is_100_percent(http: httpx.AsyncClient) -> None:
    """No events: 100 % integrity, an empty tampered list that is present."""
    body = (await _export(http, correlation_id="rr-nobody")).json()
    verification = body["hash_chain_verification"]
    assert (verification["chain_integrity_percentage"], verification["tampered_event_ids"]) == (
        100,
        [],
    )


async def test_groups_come_in_changing_order(emulator: Emulator, http: httpx.AsyncClient) -> None:
    """Without a correlation filter, groups are regrouped in no stable order."""
    start = base_time()
    for n in range(6):
        emulator.insert_events(plain_events(new_cid(), 1, start + timedelta(seconds=n)))
    orders = {
        tuple(
            e["correlation_id"]
            for e in (await _export(http, start_time=_z(start))).json()["events"]
        )
        for _ in range(8)
    }
    assert len(orders) > 1


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def test_signature_covers_six_fields_and_verifies_with_the_certificate(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """The signature is RSA-SHA256 over the sorted six-field summary with full-precision times."""
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 3))
    metadata = (await _export(http, correlation_id=cid)).json()["export_metadata"]
    signed = (
        b'{"broken_chain_events":0,"export_timestamp":"2026-03-04T05:06:07.987654Z",'
        b'"tampered_event_ids":[],"total_events":3,"valid_chain_events":3,'
        b'"verification_timestamp":"2026-03-04T05:06:07.987654Z"}'
    )
    certificate = x509.load_pem_x509_certificate(emulator.export_certificate_pem.encode())
    key = certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    key.verify(base64.b64decode(metadata["signature"]), signed, padding.PKCS1v15(), hashes.SHA256())
    assert metadata["signature_algorithm"] == "SHA256withRSA"


async def test_fingerprint_is_sha256_of_the_certificate_der(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """The fingerprint is 32 lowercase hex pairs joined by colons: SHA-256 of the DER bytes."""
    metadata = (await _export(http, correlation_id="rr-x")).json()["export_metadata"]
    der = x509.load_pem_x509_certificate(emulator.export_certificate_pem.encode()).public_bytes(
        serialization.Encoding.DER
    )
    digest = hashlib.sha256(der).hexdigest()
    expected = ":".join(digest[i : i + 2] for i in range(0, 64, 2))
    assert (metadata["certificate_fingerprint"], len(expected)) == (expected, 95)


async def test_detached_signature_only_for_exact_true(http: httpx.AsyncClient) -> None:
    """include_detached_signature=true adds the block; TRUE passes validation but is off."""
    on = (await _export(http, correlation_id="rr-x", include_detached_signature="true")).json()
    off = (await _export(http, correlation_id="rr-x", include_detached_signature="TRUE")).json()
    block = on["detached_signature"]
    assert block.startswith("-----BEGIN SIGNATURE-----\nAlgorithm: SHA256withRSA\n")
    assert block.endswith(f"\n{on['export_metadata']['signature']}\n-----END SIGNATURE-----")
    assert "detached_signature" not in off


async def test_redaction_follows_the_key_list_and_patterns(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """redact_pii masks listed keys by pattern only; other keys and non-matching values stay."""
    cid = new_cid()
    data = gateway_data(
        email="user@domain.com",
        source_ip="192.168.1.1",
        phone="+1-555-555-1234",
        ssn="123-45-6789",
        owner="alice@example.com",
        nested={"user_email": "bob@corp.io", "list": [{"ip": "10.0.0.1"}, ["10.0.0.2"]]},
        credit_card="4111111111111111",
    )
    emulator.insert_events([envelope(cid, "gateway.signal.received", data, base_time())])
    response = await http.get(
        EXPORT,
        params={"correlation_id": cid, "redact_pii": "true"},
        headers={"X-Auth-Request-User": "ops@kubernaut.ai"},
    )
    body = response.json()
    out = body["events"][0]["event_data"]
    assert body["export_metadata"]["exported_by"] == "o***@k***.a***"
    assert (out["email"], out["source_ip"], out["phone"]) == (
        "u***@d***.c***",
        "192.***.***.***",
        "+1-***-****",
    )
    assert (out["ssn"], out["owner"]) == ("123-45-6789", "alice@example.com")
    assert out["nested"] == {
        "list": [{"ip": "10.***.***.***"}, ["10.0.0.2"]],
        "user_email": "b***@c***.i***",
    }
    assert out["credit_card"] == "***-***-****111"


async def test_redaction_changes_no_hash_or_verdict(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """Redaction runs after verification: hashes and validity are those of the stored data."""
    cid = new_cid()
    emulator.insert_events(
        [envelope(cid, "gateway.signal.received", gateway_data(email="a@b.cd"), base_time())]
    )
    plain = (await _export(http, correlation_id=cid)).json()["events"][0]
    redacted = (await _export(http, correlation_id=cid, redact_pii="true")).json()["events"][0]
    assert (redacted["event_hash"], redacted["hash_chain_valid"]) == (plain["event_hash"], True)


async def test_html_characters_are_escaped(emulator: Emulator, http: httpx.AsyncClient) -> None:
    """The body escapes <, > and & as Go's encoder does."""
    cid = new_cid()
    emulator.insert_events(
        [envelope(cid, "gateway.signal.received", gateway_data(signal_name="<a&b>"), base_time())]
    )
    response = await _export(http, correlation_id=cid)
    assert b'"\\u003ca\\u0026b\\u003e"' in response.content


async def test_null_hash_in_range_fails_the_whole_export(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """One row without a hash in range is a 500 for every page that contains it."""
    cid = new_cid()
    ids = emulator.insert_events(plain_events(cid, 2))
    emulator.tamper_event(ids[1], event_hash=None, previous_event_hash=None)
    response = await _export(http, correlation_id=cid)
    assert response.status_code == 500
    assert response.json()["type"].endswith("/export/query-failed")


async def test_missing_identity_is_the_handlers_401(http: httpx.AsyncClient) -> None:
    """Without the identity header (no auth middleware in front) the handler answers 401."""
    response = await http.get(EXPORT)
    assert response.status_code == 401
    assert response.json()["detail"] == "X-Auth-Request-User header required for audit export"


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "10001"},
        {"limit": "0"},
        {"offset": "-1"},
        {"format": "csv"},
        {"redact_pii": "yes"},
        {"start_time": "2026-01-01 00:00:00Z"},
        {"end_time": "2026-01-01t00:00:00Z"},
    ],
)
async def test_validator_refusals_are_the_opaque_400(
    http: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """Parameters outside the spec get the validator's one 400."""
    response = await _export(http, **params)
    assert response.json()["type"].endswith("/validation-error")


async def test_octal_limit_reaches_the_413(http: httpx.AsyncClient) -> None:
    """limit=012000 passes the validator as octal 5120 and the handler reads 12000."""
    response = await _export(http, limit="012000")
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "Export limit exceeds maximum of 10000 events. Use pagination."
    )


@pytest.mark.parametrize(
    "params", [{"start_time": "2026-02-30T00:00:00Z"}, {"limit": "0x10"}, {"offset": "1_0"}]
)
async def test_values_only_go_refuses_get_the_handlers_400(
    http: httpx.AsyncClient, params: dict[str, str]
) -> None:
    """Values the validator accepts but Go's parsers refuse get export/invalid-parameters."""
    response = await _export(http, **params)
    assert response.json()["type"].endswith("/export/invalid-parameters")


async def test_start_after_end_is_simply_empty(http: httpx.AsyncClient) -> None:
    """start_time after end_time is no error, just no events."""
    response = await _export(
        http, start_time="2026-02-01T00:00:00Z", end_time="2026-01-01T00:00:00Z"
    )
    assert (response.status_code, response.json()["events"]) == (200, [])


async def test_empty_filter_means_no_filter(emulator: Emulator, http: httpx.AsyncClient) -> None:
    """correlation_id= (empty) exports every correlation id."""
    emulator.insert_events(plain_events(new_cid(), 1))
    emulator.insert_events(plain_events(new_cid(), 1))
    assert len((await _export(http, correlation_id="")).json()["events"]) == 2
