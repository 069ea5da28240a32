"""The audit API's data types: generated envelope models plus the SDK's own result types.

The envelope models come from ``openapi/data-storage-audit.yaml`` (see ``_generated``). Reading
is lenient: unknown fields are kept (``model_extra``) and unknown enum values become
pseudo-members whose ``is_known`` is False. Writing is strict: :class:`AuditEventRequest`
refuses unknown fields and unknown enum values before anything is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from pydantic import BaseModel

from ._base import OpenEnum, PayloadModel
from ._generated import models as _generated
from ._generated.models import (
    AuditEvent,
    AuditEventData,
    AuditEventRequest,
    AuditExportEvent,
    AuditExportMetadata,
    AuditExportQueryFilters,
    AuditExportResponse,
    EventCategory,
    EventOutcome,
    HashChainVerification,
    LegalHold,
    LegalHoldList,
    LegalHoldPlacement,
    LegalHoldRelease,
    Pagination,
    ReconstructionResponse,
    RFC7807Problem,
    TamperedEvent,
    ValidationResult,
    VerifyChainResponse,
)

# The generated classes name one another before they are defined. Complete them now, while
# their __module__ still names the generated module: kubernaut_audit/__init__ relabels the public
# ones as "kubernaut_audit", where pydantic's deferred rebuild could not resolve those names (and
# AuditEvent.model_validate() in a user's code failed with "not fully defined").
for _model in vars(_generated).values():
    if isinstance(_model, type) and issubclass(_model, BaseModel) and _model is not BaseModel:
        _model.model_rebuild()
del _model

__all__ = [
    "AuditEvent",
    "AuditEventData",
    "AuditEventPage",
    "AuditEventRequest",
    "AuditExportEvent",
    "AuditExportMetadata",
    "AuditExportQueryFilters",
    "AuditExportResponse",
    "BatchResult",
    "CreateResult",
    "EventCategory",
    "EventOutcome",
    "HashChainVerification",
    "LegalHold",
    "LegalHoldList",
    "LegalHoldPlacement",
    "LegalHoldRelease",
    "OpenEnum",
    "Pagination",
    "PayloadModel",
    "RFC7807Problem",
    "ReconstructionResponse",
    "TamperedEvent",
    "ValidationResult",
    "VerifyChainResponse",
]


@dataclass(frozen=True, slots=True)
class AuditEventPage:
    """One page of a query: the events (newest first) and where the page sits.

    ``total`` and ``has_more`` come from a count the server takes just before reading the page,
    so they can disagree with ``events`` while events are arriving.

    .. versionadded:: 0.1.0
    """

    events: list[AuditEvent]
    limit: int
    offset: int
    total: int
    has_more: bool

    def __iter__(self) -> Iterator[AuditEvent]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)


@dataclass(frozen=True, slots=True)
class CreateResult:
    """The outcome of writing one event.

    ``stored`` is False for a 202: the server parked the event in its dead-letter queue; it is
    not queryable yet and may never be.

    .. versionadded:: 0.1.0
    """

    stored: bool
    status_code: int
    message: str
    event_id: UUID | None = None
    event_timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The outcome of a batch write: every event stored, ids in the order given.

    .. versionadded:: 0.1.0
    """

    event_ids: list[UUID] = field(default_factory=list)
    requests: int = 0
    """How many HTTP requests the batch took (the server takes at most 500 events each)."""
