"""Models: lenient on read, strict on write."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pydantic
import pytest

from kubernaut_audit import (
    AuditEvent,
    AuditEventPage,
    AuditEventRequest,
    EventCategory,
    EventOutcome,
)

EventFactory = Callable[..., dict[str, Any]]


def test_extra_fields_kept(stored_event: EventFactory) -> None:
    """Fields the SDK does not know are kept in model_extra."""
    event = AuditEvent.model_validate(stored_event(tenant="blue"))
    assert event.model_extra == {"tenant": "blue"}


def test_extra_event_data_members_kept(stored_event: EventFactory) -> None:
    """event_data keeps every member, nested ones included."""
    data = {"event_type": "gateway.signal.received", "labels": {"a": "b"}, "n": 2.5}
    event = AuditEvent.model_validate(stored_event(event_data=data))
    assert event.event_data == data


def test_unknown_category_kept_as_pseudo_member(stored_event: EventFactory) -> None:
    """An unknown event_category reads as a pseudo-member with is_known False."""
    event = AuditEvent.model_validate(stored_event(event_category="quantum"))
    assert isinstance(event.event_category, EventCategory)
    assert event.event_category == "quantum"
    assert event.event_category.is_known is False


def test_unknown_outcome_kept_as_pseudo_member(stored_event: EventFactory) -> None:
    """An unknown event_outcome reads as a pseudo-member with is_known False."""
    event = AuditEvent.model_validate(stored_event(event_outcome="partial"))
    assert isinstance(event.event_outcome, EventOutcome)
    assert event.event_outcome.value == "partial"
    assert event.event_outcome.is_known is False


def test_known_category_is_known(stored_event: EventFactory) -> None:
    """A listed value reads as the real member."""
    event = AuditEvent.model_validate(stored_event(event_category="gateway"))
    assert event.event_category is EventCategory.GATEWAY
    assert event.event_category.is_known


def test_unknown_event_type_kept(stored_event: EventFactory) -> None:
    """An event type the SDK has never heard of is kept, payload and all."""
    data = {"event_type": "future.thing.happened", "whatever": [1, 2]}
    event = AuditEvent.model_validate(
        stored_event(event_type="future.thing.happened", event_data=data)
    )
    assert event.event_type == "future.thing.happened"
    assert event.event_data == data


@pytest.mark.parametrize(
    ("text", "micro"),
    [
        ("2025-01-02T03:04:05Z", 0),
        ("2025-01-02T03:04:05.1Z", 100_000),
        ("2025-01-02T03:04:05.123456Z", 123_456),
        ("2025-01-02T03:04:05.123456789Z", 123_456),
        ("2025-01-02T05:04:05.987654321+02:00", 987_654),
    ],
)
def test_go_timestamps_parse(stored_event: EventFactory, text: str, micro: int) -> None:
    """Go's 0-9 digit fractions parse (nanoseconds truncated to microseconds)."""
    event = AuditEvent.model_validate(stored_event(event_timestamp=text))
    assert event.event_timestamp.microsecond == micro
    assert event.event_timestamp.astimezone(UTC).hour == 3


def test_event_timestamp_aware(stored_event: EventFactory) -> None:
    """event_timestamp is always timezone-aware."""
    event = AuditEvent.model_validate(stored_event())
    assert event.event_timestamp.tzinfo is not None
    assert event.event_timestamp.utcoffset() == timedelta(0)


def test_naive_event_timestamp_rejected(stored_event: EventFactory) -> None:
    """A timestamp without an offset is not silently read as local time."""
    with pytest.raises(pydantic.ValidationError):
        AuditEvent.model_validate(stored_event(event_timestamp="2025-01-02T03:04:05"))


def test_null_optional_fields_accepted(stored_event: EventFactory) -> None:
    """parent_event_id, parent_event_date and legal_hold_placed_at may be null."""
    event = AuditEvent.model_validate(
        stored_event(parent_event_id=None, parent_event_date=None, legal_hold_placed_at=None)
    )
    assert event.parent_event_id is None


def test_request_refuses_unknown_field(request_event: EventFactory) -> None:
    """AuditEventRequest refuses a field it does not know."""
    with pytest.raises(pydantic.ValidationError, match="surprise"):
        AuditEventRequest.model_validate(request_event(surprise=1))


@pytest.mark.parametrize(("name", "value"), [("event_category", "x"), ("event_outcome", "y")])
def test_request_refuses_unknown_enum(request_event: EventFactory, name: str, value: str) -> None:
    """AuditEventRequest refuses enum values the spec does not list."""
    with pytest.raises(pydantic.ValidationError, match=name):
        AuditEventRequest.model_validate(request_event(**{name: value}))


@pytest.mark.parametrize(
    ("name", "value"),
    [("correlation_id", ""), ("correlation_id", "x" * 256), ("event_type", "x" * 101)],
)
def test_request_enforces_lengths(request_event: EventFactory, name: str, value: str) -> None:
    """String bounds from the spec are enforced on write."""
    with pytest.raises(pydantic.ValidationError, match=name):
        AuditEventRequest.model_validate(request_event(**{name: value}))


def test_request_requires_event_data_type(request_event: EventFactory) -> None:
    """event_data must carry its event_type discriminator."""
    with pytest.raises(pydantic.ValidationError, match="event_type"):
        AuditEventRequest.model_validate(request_event(event_data={"x": 1}))


def test_request_round_trips_to_json(request_event: EventFactory) -> None:
    """A request dumps to JSON with only the fields that were set."""
    now = datetime.now(UTC)
    req = AuditEventRequest.model_validate(request_event(event_timestamp=now))
    dumped = req.model_dump(mode="json", exclude_unset=True)
    assert "namespace" not in dumped
    assert dumped["event_category"] == "gateway"


def test_page_iterates_and_measures(stored_event: EventFactory) -> None:
    """AuditEventPage iterates over its events and has a length."""
    events = [AuditEvent.model_validate(stored_event()) for _ in range(3)]
    page = AuditEventPage(events=events, limit=10, offset=0, total=3, has_more=False)
    assert list(page) == events
    assert len(page) == 3
