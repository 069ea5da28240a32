"""The audit-trail operations on both clients, against the in-process emulator (both faces,
asyncio and trio), argument checks before any request, and a few calls over loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from trail_samples import lifecycle, new_cid, plain_events

from kubernaut_audit import (
    AsyncAuditClient,
    AuditClient,
    BadRequestError,
    ExportProgress,
    NotFoundError,
    RetryPolicy,
)
from kubernaut_audit.emulator import Emulator
from kubernaut_audit.models import (
    AuditExportResponse,
    LegalHoldList,
    ReconstructionResponse,
    VerifyChainResponse,
)

USER = "system:serviceaccount:kubernaut-system:auditor"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator()
    yield emu
    emu.close()


@pytest.fixture
async def aclient(emulator: Emulator) -> AsyncIterator[AsyncAuditClient]:
    async with AsyncAuditClient(transport=emulator.transport(), user=USER) as client:
        yield client


@pytest.fixture
def client(emulator: Emulator) -> Iterator[AuditClient]:
    with AuditClient(transport=emulator.transport(), user=USER) as sync_client:
        yield sync_client


def _refusing() -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"no request expected, got {request.method} {request.url}")

    return httpx.MockTransport(handler)


# -- async face ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_export_page_is_typed(emulator: Emulator, aclient: AsyncAuditClient) -> None:
    """export_audit_events returns one typed page, the caller named as exporter."""
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 3))
    page = await aclient.export_audit_events(correlation_id=cid, limit=2)
    assert isinstance(page, AuditExportResponse)
    assert (len(page.events), page.export_metadata.total_events) == (2, 2)
    assert page.export_metadata.exported_by == USER


@pytest.mark.anyio
async def test_iter_export_reads_every_page_and_reports(
    emulator: Emulator, aclient: AsyncAuditClient
) -> None:
    """iter_export pages by offset until a short page and reports progress after each."""
    cid = new_cid()
    ids = emulator.insert_events(plain_events(cid, 5))
    seen: list[ExportProgress] = []
    pages = [
        p async for p in aclient.iter_export(correlation_id=cid, page_size=2, on_page=seen.append)
    ]
    assert [str(e.event_id) for p in pages for e in p.events] == ids
    assert seen[-1] == ExportProgress(pages=3, events=5, offset=5, last_page=1)


@pytest.mark.anyio
async def test_iter_export_ends_on_an_empty_page(
    emulator: Emulator, aclient: AsyncAuditClient
) -> None:
    """A multiple of the page size ends with one empty page (no count exists to stop sooner)."""
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 4))
    pages = [p async for p in aclient.iter_export(correlation_id=cid, page_size=2)]
    assert [len(p.events) for p in pages] == [2, 2, 0]


@pytest.mark.anyio
async def test_verify_audit_chain_broken_is_a_result(
    emulator: Emulator, aclient: AsyncAuditClient
) -> None:
    """A broken chain is a VerifyChainResponse with is_valid False, not an exception."""
    cid = new_cid()
    ids = emulator.insert_events(plain_events(cid, 3))
    emulator.tamper_event(ids[1], event_action="rewritten")
    result = await aclient.verify_audit_chain(cid)
    assert isinstance(result, VerifyChainResponse)
    assert result.is_valid is False
    assert [str(t.event_id) for t in result.tampered_events or []] == [ids[1]]


@pytest.mark.anyio
async def test_verify_audit_chain_offline_agrees_with_the_server(
    emulator: Emulator, aclient: AsyncAuditClient
) -> None:
    """The offline walk finds the same tampered event as the server."""
    cid = new_cid()
    ids = emulator.insert_events(plain_events(cid, 4))
    emulator.tamper_event(ids[2], event_data={"event_type": "gateway.signal.received"})
    result = await aclient.verify_audit_chain_offline(cid, algorithm="sha256-unkeyed")
    assert (result.verdict, [str(i) for i in result.broken_event_ids]) == ("broken", [ids[2]])


@pytest.mark.anyio
async def test_verify_offline_with_key_on_a_keyed_emulator() -> None:
    """Keyed rows verify offline with the key and stay undetermined without it."""
    emulator = Emulator(hash_key="production-secret")
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 3))
    async with AsyncAuditClient(transport=emulator.transport()) as client:
        keyed = await client.verify_audit_chain_offline(cid, key="production-secret")
        unkeyed = await client.verify_audit_chain_offline(cid)
    emulator.close()
    assert (keyed.verdict, unkeyed.verdict) == ("intact", "undetermined")


@pytest.mark.anyio
async def test_legal_hold_round_trip(emulator: Emulator, aclient: AsyncAuditClient) -> None:
    """Place, list, release; a second release is NotFoundError."""
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 2))
    placed = await aclient.place_legal_hold(cid, "SEC case 1")
    holds = await aclient.list_legal_holds()
    released = await aclient.release_legal_hold(cid, "closed")
    assert (placed.events_affected, placed.placed_by) == (2, USER)
    assert isinstance(holds, LegalHoldList)
    assert [h.correlation_id for h in holds.holds or []] == [cid]
    assert released.events_released == 2
    with pytest.raises(NotFoundError, match="No legal hold found"):
        await aclient.release_legal_hold(cid, "closed")


@pytest.mark.anyio
async def test_place_on_unknown_id_is_not_found(aclient: AsyncAuditClient) -> None:
    """Holding a correlation id without events is NotFoundError."""
    with pytest.raises(NotFoundError):
        await aclient.place_legal_hold("rr-nobody", "why")


@pytest.mark.anyio
async def test_reconstruct_returns_yaml_and_validation(
    emulator: Emulator, aclient: AsyncAuditClient
) -> None:
    """A full lifecycle reconstructs to a valid 100 % resource."""
    cid = new_cid()
    emulator.insert_events(lifecycle(cid))
    result = await aclient.reconstruct_remediation_request(cid)
    assert isinstance(result, ReconstructionResponse)
    assert (result.validation.is_valid, result.validation.completeness) == (True, 100)
    assert result.remediation_request_yaml.startswith("apiVersion: remediation.kubernaut.ai/")


@pytest.mark.anyio
async def test_reconstruct_errors_are_typed(emulator: Emulator, aclient: AsyncAuditClient) -> None:
    """No relevant events is NotFoundError; too incomplete is BadRequestError."""
    cid = new_cid()
    data = lifecycle(cid)[0]
    del data["event_data"]["signal_annotations"], data["event_data"]["original_payload"]
    emulator.insert_events([data])
    with pytest.raises(NotFoundError):
        await aclient.reconstruct_remediation_request("rr-nobody")
    with pytest.raises(BadRequestError, match="only 33% complete"):
        await aclient.reconstruct_remediation_request(cid)


# -- arguments are checked before any request -------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.export_audit_events(correlation_id=""), "non-empty"),
        (lambda c: c.export_audit_events(limit=10_001), "limit"),
        (lambda c: c.export_audit_events(offset=-1), "offset"),
        (lambda c: c.export_audit_events(start_time=datetime(2026, 1, 1)), "timezone-aware"),
        (lambda c: c.export_audit_events(end_time="2026-01-01 00:00:00"), "RFC 3339"),
        (lambda c: c.verify_audit_chain(""), "non-empty"),
        (lambda c: c.verify_audit_chain("é" * 129), "256"),
        (lambda c: c.place_legal_hold("rr-1", ""), "reason"),
        (lambda c: c.release_legal_hold("a/b", "done"), "'/'"),
        (lambda c: c.reconstruct_remediation_request(" rr"), "blanks"),
    ],
)
async def test_bad_arguments_fail_before_any_request(call: Any, message: str) -> None:
    """Each operation refuses bad arguments with ValueError and sends nothing."""
    async with AsyncAuditClient(transport=_refusing()) as client:
        with pytest.raises(ValueError, match=message):
            await call(client)


def test_iter_export_checks_before_iterating() -> None:
    """iter_export refuses a bad page size when called, not on the first page."""
    with AuditClient(transport=_refusing()) as client, pytest.raises(ValueError, match="limit"):
        client.iter_export(page_size=0)


@pytest.mark.anyio
async def test_export_sends_times_and_flags_as_the_service_reads_them() -> None:
    """Aware datetimes go out in UTC with Z, flags as "true", limit and offset always."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(500)

    async with AsyncAuditClient(
        transport=httpx.MockTransport(handler), retry=RetryPolicy(attempts=1)
    ) as client:
        with pytest.raises(Exception, match="500"):
            await client.export_audit_events(
                start_time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                redact_pii=True,
                include_detached_signature=True,
            )
    params = dict(seen[0].url.params)
    assert params == {
        "start_time": "2026-01-02T03:04:05.000000Z",
        "include_detached_signature": "true",
        "redact_pii": "true",
        "offset": "0",
        "limit": "1000",
    }


@pytest.mark.anyio
async def test_release_path_escapes_as_the_service_expects() -> None:
    """A correlation id with a space or a percent sign is escaped as Go escapes paths."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(404)

    async with AsyncAuditClient(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(NotFoundError):
            await client.release_legal_hold("rr 1%", "done")
    assert seen[0].url.raw_path == b"/api/v1/audit/legal-hold/rr%201%25"


# -- blocking face ------------------------------------------------------------------------------


def test_sync_face_runs_every_operation(emulator: Emulator, client: AuditClient) -> None:
    """The blocking client offers the same operations with the same results."""
    cid = new_cid()
    emulator.insert_events(lifecycle(cid))
    assert len(client.export_audit_events(correlation_id=cid).events) == 6
    assert sum(len(p.events) for p in client.iter_export(correlation_id=cid, page_size=4)) == 6
    assert client.verify_audit_chain(cid).is_valid is True
    assert client.verify_audit_chain_offline(cid).intact
    assert client.place_legal_hold(cid, "r").events_affected == 6
    assert client.list_legal_holds().total == 1
    assert client.release_legal_hold(cid, "done").events_released == 6
    assert client.reconstruct_remediation_request(cid).validation.completeness == 100


def test_sync_iter_export_reports_progress(emulator: Emulator, client: AuditClient) -> None:
    """The blocking iterator calls on_page after each page, in the caller's thread."""
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 3))
    seen: list[ExportProgress] = []
    list(client.iter_export(correlation_id=cid, page_size=2, on_page=seen.append))
    assert [s.events for s in seen] == [2, 3]


# -- over loopback --------------------------------------------------------------------------------


def test_trail_operations_over_loopback() -> None:
    """Export, verification, legal hold and reconstruction over a real socket."""
    emulator = Emulator()
    cid = new_cid()
    emulator.insert_events(lifecycle(cid))
    try:
        with emulator.serve_in_thread() as url, AuditClient(base_url=url, user=USER) as client:
            page = client.export_audit_events(correlation_id=cid, include_detached_signature=True)
            assert page.detached_signature is not None
            assert client.verify_audit_chain(cid).verified_events == 6
            assert client.place_legal_hold(cid, "r").placed_by == USER
            assert client.release_legal_hold(cid, "done").events_released == 6
            result = client.reconstruct_remediation_request(cid)
            assert result.correlation_id == cid
    finally:
        emulator.close()
