"""The audit-event operations, sans I/O: each is a request builder returning an
:class:`~._core.Operation` (whose decoder reads the answer), so a client method is a few lines
of sending. A new operation goes here (or in a sibling module of its own), never in the client.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from uuid import UUID

import pydantic

from ._config import MAX_BATCH_SIZE
from ._core import Operation, Response, decode, dump_json
from ._exceptions import (
    AuditError,
    BatchPartiallyStoredError,
    DataStorageError,
    TransportConnectionError,
    TransportTimeoutError,
)
from ._generated.models import (
    AsyncAcceptanceResponse,
    AuditEventResponse,
    AuditEventsQueryResponse,
    BatchAuditEventResponse,
)
from ._payloads import PayloadRegistry
from ._query import QueryFilters, page_params
from ._tracebacks import hide_audit_errors
from .models import AuditEventPage, AuditEventRequest, CreateResult

# pytest leaves this module's frames out of the traceback of an AuditError (see _tracebacks).
__tracebackhide__ = hide_audit_errors

EVENTS_PATH = "/api/v1/audit/events"
BATCH_PATH = "/api/v1/audit/events/batch"
READY_PATH = "/readyz"
#: Bytes of one batch request at most: the server refuses bodies over 5 MiB; keep a margin.
MAX_BATCH_BYTES = 4 * 1024 * 1024

QUERY_ADAPTER = pydantic.TypeAdapter(AuditEventsQueryResponse)
_CREATED_ADAPTER = pydantic.TypeAdapter(AuditEventResponse)
_ACCEPTED_ADAPTER = pydantic.TypeAdapter(AsyncAcceptanceResponse)
_BATCH_ADAPTER = pydantic.TypeAdapter(BatchAuditEventResponse)

#: An event to write: the strict model, or a mapping validated into it before anything is sent.
EventInput = AuditEventRequest | Mapping[str, Any]


# -- query ------------------------------------------------------------------------------------


def query_page(
    filters: QueryFilters, limit: int, offset: int, *, payloads: PayloadRegistry | None = None
) -> Operation[AuditEventPage]:
    """One page of a query; the events carry ``payloads`` when given."""

    def read(response: Response) -> AuditEventPage:
        decoded = decode(QUERY_ADAPTER, response)
        events = decoded.data or []
        if payloads is not None:
            payloads._attach(events)
        pagination = decoded.pagination
        return AuditEventPage(
            events=events,
            limit=pagination.limit if pagination and pagination.limit is not None else limit,
            offset=pagination.offset if pagination and pagination.offset is not None else offset,
            total=pagination.total if pagination and pagination.total is not None else len(events),
            has_more=bool(pagination.has_more) if pagination else False,
        )

    return Operation("GET", EVENTS_PATH, read, params=page_params(filters, limit, offset))


# -- writes -----------------------------------------------------------------------------------


def encode_event(event: EventInput) -> bytes:
    """The JSON of one event, validated strictly (before anything is sent)."""
    # Models are validated again: model_construct() or attribute assignment can bypass checks.
    data = event.model_dump(exclude_unset=True) if isinstance(event, AuditEventRequest) else event
    model = AuditEventRequest.model_validate(data)
    return dump_json(model.model_dump(mode="json", exclude_unset=True))


def create_event(event: EventInput, *, retry_writes: bool) -> Operation[CreateResult]:
    """Write one event; a 202 reads as ``stored=False`` (parked, not queryable)."""
    return Operation(
        "POST",
        EVENTS_PATH,
        _read_created,
        body=encode_event(event),
        idempotent=retry_writes,
        write=True,
    )


def _read_created(response: Response) -> CreateResult:
    if response.status_code == 202:
        accepted = decode(_ACCEPTED_ADAPTER, response)
        return CreateResult(stored=False, status_code=202, message=accepted.message)
    created = decode(_CREATED_ADAPTER, response)
    return CreateResult(
        stored=True,
        status_code=response.status_code,
        message=created.message,
        event_id=created.event_id,
        event_timestamp=created.event_timestamp,
    )


def batch_chunks(events: Iterable[EventInput]) -> list[list[bytes]]:
    """Every event encoded (all validated first), in chunks the server accepts: at most
    ``MAX_BATCH_SIZE`` events and ``MAX_BATCH_BYTES`` bytes per request."""
    chunks: list[list[bytes]] = []
    current: list[bytes] = []
    size = 2  # the brackets of the JSON array
    for item in [encode_event(e) for e in events]:
        if current and (len(current) >= MAX_BATCH_SIZE or size + len(item) + 1 > MAX_BATCH_BYTES):
            chunks.append(current)
            current, size = [], 2
        current.append(item)
        size += len(item) + 1
    if current:
        chunks.append(current)
    return chunks


def create_batch(chunk: list[bytes], *, retry_writes: bool) -> Operation[list[UUID]]:
    """Write one chunk through the batch endpoint; reads the ids stored."""

    def read(response: Response) -> list[UUID]:
        return list(decode(_BATCH_ADAPTER, response).event_ids or [])

    return Operation(
        "POST",
        BATCH_PATH,
        read,
        body=b"[" + b",".join(chunk) + b"]",
        idempotent=retry_writes,
        write=True,
    )


def partial_batch_error(
    error: AuditError, *, index: int, chunks: list[list[bytes]], stored: list[UUID]
) -> BatchPartiallyStoredError:
    """Chunk ``index`` failed with ``error`` after the earlier ones stored ``stored``."""
    unsent = sum(len(c) for c in chunks[index:])
    return BatchPartiallyStoredError(
        f"batch write failed at chunk {index + 1} of {len(chunks)}: {len(stored)} "
        f"events stored, {unsent} not ({error})",
        request=error.request,
        event_ids=stored,
        unsent=unsent,
    )


# -- health -----------------------------------------------------------------------------------


def ready() -> Operation[bool]:
    """``/readyz``: True on 200 (see :func:`means_not_ready` for the errors that mean False)."""
    return Operation("GET", READY_PATH, lambda response: response.status_code == 200)


def means_not_ready(error: AuditError) -> bool:
    """Whether a readiness probe's error is an answer: a 503, or nothing answering at all."""
    if isinstance(error, DataStorageError):
        return error.status_code == 503
    return isinstance(error, TransportConnectionError | TransportTimeoutError)
