"""Type-checked only (mypy --strict, pyright): the public API's types as a user sees them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, assert_type
from uuid import UUID

import httpx
from pydantic import BaseModel

import kubernaut_audit
from kubernaut_audit import (
    AsyncAuditClient,
    AsyncExpectationSet,
    AuditCheck,
    AuditClient,
    AuditError,
    AuditEvent,
    AuditEventPage,
    AuditEventRequest,
    BatchResult,
    ChainBreak,
    ChainVerification,
    CreateResult,
    DataStorageError,
    EventCategory,
    EventOutcome,
    ExpectationSet,
    ExportProgress,
    PayloadRegistry,
    PollRecord,
    RequestInfo,
    RetryDetails,
    RetryHook,
    RetryPolicy,
    TransportConnectionError,
    TransportError,
    TransportTimeoutError,
    WaitResult,
    WaitStats,
    assert_no_audit_events,
    compute_event_hash,
    verify_event_chain,
    wait_for_audit_events,
)
from kubernaut_audit.models import (
    AuditExportEvent,
    AuditExportResponse,
    LegalHoldList,
    LegalHoldPlacement,
    LegalHoldRelease,
    PayloadModel,
    ReconstructionResponse,
    VerifyChainResponse,
)


def hook(details: RetryDetails) -> None:
    assert_type(details.attempt, int)
    assert_type(details.wait, float)
    assert_type(details.error, AuditError)
    assert_type(details.request, RequestInfo)


def hooks() -> list[RetryHook]:
    seen: list[RetryDetails] = []
    return [hook, seen.append, lambda d: None]


async def async_face(transport: httpx.AsyncBaseTransport) -> None:
    async with AsyncAuditClient(
        base_url="http://ds.test",
        token="t",
        user="alice",
        timeout=httpx.Timeout(5.0),
        headers={"X-Test": "1"},
        transport=transport,
        retry=RetryPolicy(attempts=3, timeout=10.0),
        retry_hooks=hooks(),
        max_response_bytes=1 << 20,
    ) as client:
        assert_type(client, AsyncAuditClient)
        page = await client.query_audit_events(
            correlation_id="rr-1",
            event_category=EventCategory.GATEWAY,
            event_outcome="success",
            since=datetime.now(UTC) - timedelta(hours=1),
            until="24h",
            limit=10,
        )
        assert_type(page, AuditEventPage)
        assert_type(page.events, list[AuditEvent])
        assert_type(page.total, int)
        for event in page:
            assert_type(event, AuditEvent)
            assert_type(event.event_id, UUID | None)
            assert_type(event.event_timestamp, datetime)
            assert_type(event.event_category, EventCategory)
            assert_type(event.event_outcome, EventOutcome)
            assert_type(event.event_category.is_known, bool)
            assert_type(event.event_data, dict[str, Any])
        walk = client.iter_audit_events(event_type="gateway.signal.received")
        assert_type(walk, AsyncIterator[AuditEvent])
        assert_type(await client.list_audit_events(severity="info"), list[AuditEvent])
        request = AuditEventRequest.model_validate({})
        assert_type(await client.create_audit_event(request), CreateResult)
        assert_type(await client.create_audit_event({"version": "1.0"}), CreateResult)
        batch = await client.create_audit_events([request], retry_writes=True)
        assert_type(batch, BatchResult)
        assert_type(batch.event_ids, list[UUID])
        assert_type(await client.ready(), bool)


def sync_face() -> None:
    with AuditClient(base_url="http://ds.test", token_file="/var/run/token") as client:
        assert_type(client, AuditClient)
        assert_type(client.query_audit_events(correlation_id="rr-1"), AuditEventPage)
        assert_type(client.iter_audit_events(correlation_id="rr-1"), Iterator[AuditEvent])
        assert_type(client.list_audit_events(correlation_id="rr-1"), list[AuditEvent])
        result = client.create_audit_event({"version": "1.0"})
        assert_type(result.stored, bool)
        assert_type(result.event_id, UUID | None)
        assert_type(client.ready(), bool)


def errors() -> None:
    try:
        sync_face()
    except TransportConnectionError as exc:
        transport: TransportError = exc
        assert_type(transport.request_sent, bool)
    except TransportTimeoutError as exc:
        assert_type(exc.request_sent, bool)
    except DataStorageError as exc:
        assert_type(exc.status_code, int)
        assert_type(exc.field_errors, dict[str, str])
        assert_type(exc.title, str | None)
        assert_type(exc.body, str | None)
        assert_type(exc.retry_after, float | None)
        assert_type(exc.request, RequestInfo | None)
    except AuditError as exc:
        assert_type(str(exc), str)


def on_poll(poll: PollRecord) -> None:
    assert_type(poll.kind, str)
    assert_type(poll.shared, bool)


async def waits(client: AsyncAuditClient, blocking: AuditClient) -> None:
    result = await wait_for_audit_events(client, "rr-1", count=2, on_poll=on_poll)
    assert_type(result, WaitResult)
    assert_type(result.stats, WaitStats)
    assert_type(result[0], AuditEvent)
    assert_type(wait_for_audit_events(blocking, "rr-1", settle=True), WaitResult)
    assert_type(await client.wait_for_audit_events("rr-1"), WaitResult)
    assert_type(blocking.wait_for_audit_events("rr-1"), WaitResult)
    assert_type(assert_no_audit_events(blocking, "rr-1", during=1.0), None)
    await assert_no_audit_events(client, "rr-1", event_type="x")


async def expectations(client: AsyncAuditClient, blocking: AuditClient) -> None:
    exp = client.expectations("rr-1", on_poll=on_poll)
    assert_type(exp, AsyncExpectationSet)
    check = exp.expect(
        event_type="a.b.c", count=1, settle=True, where=lambda e: e.event_type == "a.b.c"
    )
    assert_type(check, AuditCheck)
    assert_type(check.correlation_id, str)
    assert_type(exp.expect_none(event_type="x.y.z", during=1.0), AuditCheck)
    assert_type(exp.checks, tuple[AuditCheck, ...])
    await exp.verify()
    async with client.expectations("rr-2") as scoped:
        assert_type(scoped, AsyncExpectationSet)
    sync = blocking.expectations("rr-1")
    assert_type(sync, ExpectationSet)
    sync.expect(event_types={"a.b.c": 2}, timeout=5.0)
    assert_type(sync.verify(), None)
    with blocking.expectations("rr-3") as block:
        block.expect_none()


class _Pong(PayloadModel):
    latency_ms: int


def typed_payloads(event: AuditEvent) -> None:
    registry = PayloadRegistry({"demo.pong.sent": _Pong})
    assert_type(registry["demo.pong.sent"], type[BaseModel])
    assert_type(registry.parse("demo.pong.sent", {"latency_ms": 1}), BaseModel | dict[str, Any])
    with AuditClient(base_url="http://ds.test", payloads=registry) as client:
        assert_type(client, AuditClient)
    assert_type(event.event_data, dict[str, Any])
    assert_type(event.payload, BaseModel | dict[str, Any])
    assert_type(event.data_as(_Pong), _Pong)
    payload = event.payload
    if isinstance(payload, _Pong):
        assert_type(payload.latency_ms, int)


def progress(step: ExportProgress) -> None:
    assert_type(step.events, int)


async def audit_trail(client: AsyncAuditClient, blocking: AuditClient) -> None:
    page = await client.export_audit_events(correlation_id="rr-1", limit=10, redact_pii=True)
    assert_type(page, AuditExportResponse)
    async for each in client.iter_export(start_time=datetime.now(UTC), on_page=progress):
        assert_type(each, AuditExportResponse)
    for each in blocking.iter_export(correlation_id="rr-1"):
        assert_type(each.events, list[AuditExportEvent])
    assert_type(await client.verify_audit_chain("rr-1"), VerifyChainResponse)
    offline = blocking.verify_audit_chain_offline("rr-1", key=b"k", algorithm="hmac-sha256")
    assert_type(offline, ChainVerification)
    assert_type(offline.breaks, tuple[ChainBreak, ...])
    assert_type(verify_event_chain([{"event_id": "x"}]), ChainVerification)
    assert_type(compute_event_hash({"event_id": "x"}, ""), str)
    assert_type(await client.place_legal_hold("rr-1", "why"), LegalHoldPlacement)
    assert_type(blocking.list_legal_holds(), LegalHoldList)
    assert_type(blocking.release_legal_hold("rr-1", "done"), LegalHoldRelease)
    assert_type(await client.reconstruct_remediation_request("rr-1"), ReconstructionResponse)


assert_type(kubernaut_audit.__all__, list[str])
