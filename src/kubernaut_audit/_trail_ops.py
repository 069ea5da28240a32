"""The audit-trail operations, sans I/O: export, verify-chain, legal hold, reconstruction.

Each builder validates its arguments (before any request) and returns an
:class:`~._core.Operation` whose decoder reads the answer into the generated models.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypedDict, TypeVar
from urllib.parse import quote

import pydantic

from ._core import Operation, Response, decode, dump_json
from ._generated.models import (
    AuditExportResponse,
    EventCategory,
    LegalHoldList,
    LegalHoldPlacement,
    LegalHoldRelease,
    PlaceLegalHoldRequest,
    ReconstructionResponse,
    ReleaseLegalHoldRequest,
    VerifyChainRequest,
    VerifyChainResponse,
)
from ._tracebacks import hide_audit_errors

# pytest leaves this module's frames out of the traceback of an AuditError (see _tracebacks).
__tracebackhide__ = hide_audit_errors

EXPORT_PATH = "/api/v1/audit/export"
VERIFY_PATH = "/api/v1/audit/verify-chain"
LEGAL_HOLD_PATH = "/api/v1/audit/legal-hold"
RECONSTRUCT_PATH = "/api/v1/audit/remediation-requests/{}/reconstruct"
#: The service's export page bounds and default.
MAX_EXPORT_LIMIT = 10_000
DEFAULT_EXPORT_LIMIT = 1_000
#: The service refuses longer correlation ids in verify-chain (it counts bytes).
MAX_VERIFY_ID_BYTES = 256
#: What the service's path escaping leaves as it is; the rest is percent-encoded as Go does.
_PATH_SAFE = "-_.~$&+,:;=@"
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")

M = TypeVar("M", bound=pydantic.BaseModel)


def _reader(model: type[M]) -> pydantic.TypeAdapter[M]:
    return pydantic.TypeAdapter(model)


_EXPORT = _reader(AuditExportResponse)
_VERIFY = _reader(VerifyChainResponse)
_PLACED = _reader(LegalHoldPlacement)
_HOLDS = _reader(LegalHoldList)
_RELEASED = _reader(LegalHoldRelease)
_RECONSTRUCTED = _reader(ReconstructionResponse)


def _text(name: str, value: object) -> str:
    if isinstance(value, EventCategory):
        value = value.value
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if value == "" or value.strip() != value:
        raise ValueError(
            f"{name} must be a non-empty string without surrounding blanks, got {value!r}"
        )
    return value


def _path_segment(correlation_id: str) -> str:
    cid = _text("correlation_id", correlation_id)
    if "/" in cid:
        # The service routes on one raw path segment and does not decode %2F in it: an id with
        # a slash cannot be addressed in a path at all.
        raise ValueError(f"correlation_id={cid!r} contains '/', which the service cannot route")
    return quote(cid, safe=_PATH_SAFE)


def _time(name: str, value: datetime | str) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware (a naive datetime is ambiguous)")
        return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, str):
        if _RFC3339.fullmatch(value) is None:
            raise ValueError(
                f"{name}={value!r} is not an RFC 3339 time with a capital T and Z or an offset"
            )
        return value
    raise TypeError(f"{name} must be a datetime or str, not {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class ExportQuery:
    """Validated export filters and flags; build with :func:`export_query`."""

    start_time: str | None = None
    end_time: str | None = None
    correlation_id: str | None = None
    event_category: str | None = None
    include_detached_signature: bool = False
    redact_pii: bool = False

    def params(self, limit: int, offset: int) -> list[tuple[str, str | int]]:
        found: list[tuple[str, str | int]] = [
            (name, value)
            for name, value in (
                ("start_time", self.start_time),
                ("end_time", self.end_time),
                ("correlation_id", self.correlation_id),
                ("event_category", self.event_category),
            )
            if value is not None
        ]
        if self.include_detached_signature:
            found.append(("include_detached_signature", "true"))
        if self.redact_pii:
            found.append(("redact_pii", "true"))
        return [*found, ("offset", offset), ("limit", limit)]


def export_query(
    *,
    start_time: datetime | str | None = None,
    end_time: datetime | str | None = None,
    correlation_id: str | None = None,
    event_category: str | EventCategory | None = None,
    include_detached_signature: bool = False,
    redact_pii: bool = False,
) -> ExportQuery:
    """Validate export arguments: empty filters are refused (the service reads them as "no
    filter"), times must be aware or RFC 3339 with a capital T and a zone."""
    for name, flag in (
        ("include_detached_signature", include_detached_signature),
        ("redact_pii", redact_pii),
    ):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be a bool, not {type(flag).__name__}")
    return ExportQuery(
        start_time=_time("start_time", start_time) if start_time is not None else None,
        end_time=_time("end_time", end_time) if end_time is not None else None,
        correlation_id=(
            _text("correlation_id", correlation_id) if correlation_id is not None else None
        ),
        event_category=(
            _text("event_category", event_category) if event_category is not None else None
        ),
        include_detached_signature=include_detached_signature,
        redact_pii=redact_pii,
    )


def check_export_bounds(limit: int, offset: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_EXPORT_LIMIT:
        raise ValueError(f"limit must be an int from 1 to {MAX_EXPORT_LIMIT}, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be an int >= 0, got {offset!r}")


def export_page(query: ExportQuery, limit: int, offset: int) -> Operation[AuditExportResponse]:
    """One export page; ``limit`` and ``offset`` are always sent."""
    check_export_bounds(limit, offset)

    def read(response: Response) -> AuditExportResponse:
        return decode(_EXPORT, response)

    return Operation("GET", EXPORT_PATH, read, params=query.params(limit, offset))


def verify_chain(correlation_id: str) -> Operation[VerifyChainResponse]:
    """Server-side verification of one chain (read-only, so retried like a query)."""
    cid = _text("correlation_id", correlation_id)
    if len(cid.encode()) > MAX_VERIFY_ID_BYTES:
        raise ValueError(
            f"correlation_id is {len(cid.encode())} bytes; verify-chain allows "
            f"{MAX_VERIFY_ID_BYTES}"
        )
    body = VerifyChainRequest(correlation_id=cid).model_dump(mode="json")
    return Operation(
        "POST", VERIFY_PATH, lambda r: decode(_VERIFY, r), body=dump_json(body), idempotent=True
    )


def place_legal_hold(correlation_id: str, reason: str) -> Operation[LegalHoldPlacement]:
    """Place (or overwrite) the hold on every stored event of a correlation id."""
    request = PlaceLegalHoldRequest(
        correlation_id=_text("correlation_id", correlation_id), reason=_text("reason", reason)
    )
    return Operation(
        "POST",
        LEGAL_HOLD_PATH,
        lambda r: decode(_PLACED, r),
        body=dump_json(request.model_dump(mode="json")),
        idempotent=False,
        write=True,
    )


def list_legal_holds() -> Operation[LegalHoldList]:
    return Operation("GET", LEGAL_HOLD_PATH, lambda r: decode(_HOLDS, r))


def release_legal_hold(correlation_id: str, reason: str) -> Operation[LegalHoldRelease]:
    """Release a hold; a retry after a release that went through would be a 404, so none."""
    segment = _path_segment(correlation_id)
    request = ReleaseLegalHoldRequest(release_reason=_text("reason", reason))
    return Operation(
        "DELETE",
        f"{LEGAL_HOLD_PATH}/{segment}",
        lambda r: decode(_RELEASED, r),
        body=dump_json(request.model_dump(mode="json")),
        idempotent=False,
        write=True,
    )


def reconstruct(correlation_id: str) -> Operation[ReconstructionResponse]:
    """Reconstruction of a RemediationRequest (read-only, so retried like a query)."""
    return Operation(
        "POST",
        RECONSTRUCT_PATH.format(_path_segment(correlation_id)),
        lambda r: decode(_RECONSTRUCTED, r),
        idempotent=True,
    )


class ExportFilters(TypedDict, total=False):
    """What an export selects and adds, as keyword arguments; all optional."""

    start_time: datetime | str
    end_time: datetime | str
    correlation_id: str
    event_category: str | EventCategory
    include_detached_signature: bool
    redact_pii: bool


@dataclass(frozen=True, slots=True)
class ExportProgress:
    """Where an export walk is, after each page (given to ``on_page``).

    Attributes:
        pages: pages read so far.
        events: events read so far (duplicates included, see :meth:`iter_export`).
        offset: the offset of the next page.
        last_page: events on the page just read.

    .. versionadded:: 0.2.0
    """

    pages: int
    events: int
    offset: int
    last_page: int


@dataclass(slots=True)
class ExportWalker:
    """Pages by offset until a page holds fewer than ``page_size`` events (the service has no
    count and no ``has_more``)."""

    page_size: int
    offset: int = 0
    pages: int = 0
    events: int = 0
    done: bool = False

    def feed(self, page: AuditExportResponse) -> ExportProgress:
        size = len(page.events)
        self.pages += 1
        self.events += size
        self.offset += size
        self.done = size < self.page_size
        return ExportProgress(self.pages, self.events, self.offset, size)
