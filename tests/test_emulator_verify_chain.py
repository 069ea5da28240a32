"""POST /api/v1/audit/verify-chain answers as the service does."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from trail_samples import VERIFY, new_cid, plain_events

from kubernaut_audit.emulator import Emulator, Faults

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 3, 4, 5, 6, 7, 987654, tzinfo=UTC)


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator(clock=lambda: NOW)
    yield emu
    emu.close()


@pytest.fixture
async def http(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://ds") as client:
        yield client


def _chain(emulator: Emulator, count: int = 3) -> tuple[str, list[str]]:
    cid = new_cid()
    return cid, emulator.insert_events(plain_events(cid, count))


async def test_intact_chain_body_is_byte_exact(emulator: Emulator, http: httpx.AsyncClient) -> None:
    """An intact chain: 200, struct order, no tampered_events key, a trailing newline."""
    cid, _ = _chain(emulator)
    response = await http.post(VERIFY, json={"correlation_id": cid})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert (
        response.content
        == (
            f'{{"correlation_id":"{cid}","is_valid":true,"total_events":3,"verified_events":3,'
            '"verification_time":"2026-03-04T05:06:07.987654Z",'
            '"message":"Hash chain verified successfully: no tampering detected"}\n'
        ).encode()
    )


async def test_unknown_correlation_id_is_an_empty_valid_chain(http: httpx.AsyncClient) -> None:
    """No events is 200 and valid, never a 404."""
    body = (await http.post(VERIFY, json={"correlation_id": "rr-nobody"})).json()
    assert (body["is_valid"], body["total_events"], body["message"]) == (
        True,
        0,
        "No events found for correlation_id",
    )


async def test_changed_payload_is_one_hash_entry(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """A changed payload gives one 'Event hash mismatch' entry with both hashes."""
    cid, ids = _chain(emulator)
    emulator.tamper_event(ids[1], event_data={"event_type": "gateway.signal.received"})
    body = (await http.post(VERIFY, json={"correlation_id": cid})).json()
    [entry] = body["tampered_events"]
    assert (body["is_valid"], body["verified_events"], entry["event_id"]) == (False, 2, ids[1])
    assert entry["message"] == "Event hash mismatch: event data has been tampered"
    assert entry["expected_hash"] != entry["actual_hash"] != ""


async def test_changed_previous_hash_alone_is_one_link_entry(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """A rewritten previous_event_hash (not hashed itself) gives one link entry, hashes empty."""
    cid, ids = _chain(emulator)
    emulator.tamper_event(ids[2], previous_event_hash="0" * 64)
    body = (await http.post(VERIFY, json={"correlation_id": cid})).json()
    [entry] = body["tampered_events"]
    assert (entry["expected_hash"], entry["actual_hash"], body["verified_events"]) == ("", "", 3)
    assert entry["message"].startswith("Previous hash mismatch")


async def test_null_hash_rows_are_skipped_and_counted(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """Rows without a hash are left out, counted in skipped_null_hash and named in the message."""
    cid, _ = _chain(emulator, 2)
    [extra] = emulator.insert_events(plain_events(cid, 1))
    emulator.tamper_event(extra, event_hash=None, previous_event_hash=None)
    body = (await http.post(VERIFY, json={"correlation_id": cid})).json()
    assert (body["total_events"], body["skipped_null_hash"]) == (2, 1)
    assert body["message"].endswith("(1 events without hashes were excluded from verification)")


async def test_keyed_row_without_key_is_a_500(emulator: Emulator, http: httpx.AsyncClient) -> None:
    """An hmac-sha256 row on a server without a key fails the walk: 500, fixed detail."""
    cid, ids = _chain(emulator)
    emulator.tamper_event(ids[0], hash_algorithm="hmac-sha256")
    response = await http.post(VERIFY, json={"correlation_id": cid})
    assert response.status_code == 500
    assert response.json() == {
        "type": "https://kubernaut.ai/problems/verify-chain/internal-error",
        "title": "Verification Failed",
        "status": 500,
        "detail": "An internal error occurred. Check server logs for details.",
    }


async def test_database_down_is_a_500(emulator: Emulator, http: httpx.AsyncClient) -> None:
    """A database failure is the same redacted 500."""
    emulator.faults = Faults(database_down=True)
    response = await http.post(VERIFY, json={"correlation_id": "rr-x"})
    assert response.status_code == 500


async def test_empty_correlation_id_is_the_handlers_400(http: httpx.AsyncClient) -> None:
    """ "" passes the schema and is refused by the handler."""
    response = await http.post(VERIFY, json={"correlation_id": ""})
    assert response.json() == {
        "type": "https://kubernaut.ai/problems/missing-correlation-id",
        "title": "Missing Required Field",
        "status": 400,
        "detail": "Field 'correlation_id' is required",
    }


async def test_correlation_id_over_256_bytes_is_refused(http: httpx.AsyncClient) -> None:
    """The limit counts bytes: 129 two-byte characters are too long."""
    response = await http.post(VERIFY, json={"correlation_id": "é" * 129})
    assert response.json()["type"].endswith("/invalid-correlation-id")


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b'{"correlation_id": 5}', {"content-type": "application/json"}),
        (b"{}", {"content-type": "application/json"}),
        (b"{not json", {"content-type": "application/json"}),
        (b'{"correlation_id": "a"}', {"content-type": "text/plain"}),
        (b"", {"content-type": "application/json"}),
    ],
    ids=["not-a-string", "missing", "invalid-json", "no-json-content-type", "no-body"],
)
async def test_schema_violations_get_the_opaque_400(
    http: httpx.AsyncClient, content: bytes, headers: dict[str, str]
) -> None:
    """The validator refuses a bad body with its one opaque 400 before the handler runs."""
    response = await http.post(VERIFY, content=content, headers=headers)
    assert response.status_code == 400
    assert response.json()["type"].endswith("/validation-error")


async def test_case_variant_key_reaches_the_handlers_decode_error(http: httpx.AsyncClient) -> None:
    """A case-variant key of the wrong type passes the schema and fails Go's decoder."""
    content = json.dumps({"correlation_id": "a", "Correlation_ID": 5}).encode()
    response = await http.post(
        VERIFY, content=content, headers={"content-type": "application/json"}
    )
    assert response.json()["type"].endswith("/invalid-request-body")


async def test_case_variant_key_overrides_the_validated_value(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """The last case-insensitive match wins: the handler verifies the variant's value."""
    cid, _ = _chain(emulator)
    content = json.dumps({"correlation_id": "other", "CORRELATION_ID": cid}).encode()
    response = await http.post(
        VERIFY, content=content, headers={"content-type": "application/json"}
    )
    assert response.json()["correlation_id"] == cid


async def test_wrong_method_is_405(http: httpx.AsyncClient) -> None:
    """GET on verify-chain is chi's 405 with an Allow header."""
    response = await http.get(VERIFY)
    assert (response.status_code, response.headers.get("allow")) == (405, "POST")
