"""What a wait waits for: filters applied on the client, counts, types and a predicate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

from ._query import QueryFilters, make_filters
from .models import AuditEvent, EventCategory, EventOutcome

Predicate = Callable[[AuditEvent], bool]


class Selection(TypedDict, total=False):
    """Which events of the correlation id count (all optional; they combine with AND)."""

    event_type: str
    event_category: str | EventCategory
    event_outcome: str | EventOutcome
    severity: str
    where: Predicate


class Criteria(Selection, total=False):
    """A selection plus how many of which types are expected."""

    min_count: int
    count: int
    event_types: Sequence[str] | Mapping[str, int]


def _count_arg(name: str, value: object, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a wait waits for; validated before any request."""

    filters: QueryFilters
    where: Predicate | None = None
    min_count: int = 1
    count: int | None = None
    event_types: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        correlation_id: str,
        *,
        event_type: str | None = None,
        event_category: str | EventCategory | None = None,
        event_outcome: str | EventOutcome | None = None,
        severity: str | None = None,
        min_count: int = 1,
        count: int | None = None,
        event_types: Sequence[str] | Mapping[str, int] | None = None,
        where: Predicate | None = None,
    ) -> Expectation:
        if not isinstance(correlation_id, str) or not correlation_id.strip():
            raise ValueError(
                "correlation_id is required and must be a non-empty string: waiting without "
                "it would match other tests' events"
            )
        filters = make_filters(
            correlation_id=correlation_id,
            event_type=event_type,
            event_category=event_category,
            event_outcome=event_outcome,
            severity=severity,
        )
        min_count = _count_arg("min_count", min_count, minimum=0)
        if count is not None:
            count = _count_arg("count", count, minimum=0)
            if min_count > count:
                raise ValueError(f"min_count={min_count} cannot exceed count={count}")
        types: dict[str, int] = {}
        if event_types is not None:
            if isinstance(event_types, str):
                raise TypeError("event_types takes a list of types or a mapping type -> count")
            if isinstance(event_types, Mapping):
                types = {
                    str(t): _count_arg(f"event_types[{t!r}]", n, minimum=1)
                    for t, n in event_types.items()
                }
            else:
                types = dict.fromkeys(map(str, event_types), 1)
            if not types or any(not t for t in types):
                raise ValueError("event_types must list at least one non-empty type")
            if event_type is not None and set(types) != {event_type}:
                raise ValueError(
                    f"event_type={event_type!r} filters out the other types of event_types"
                )
        if where is not None and not callable(where):
            raise TypeError("where must be a callable taking an AuditEvent")
        return cls(filters, where, min_count, count, types)

    def matches(self, event: AuditEvent) -> bool:
        f = self.filters
        if f.event_type is not None and event.event_type != f.event_type:
            return False
        if f.event_category is not None and str(event.event_category) != f.event_category:
            return False
        if f.event_outcome is not None and str(event.event_outcome) != f.event_outcome:
            return False
        if f.severity is not None and event.severity != f.severity:
            return False
        return self.where is None or bool(self.where(event))

    def unmet(self, matched: Sequence[AuditEvent]) -> list[str]:
        """What is still missing (empty when the expectation holds)."""
        missing: list[str] = []
        need = self.count if self.count is not None else self.min_count
        if len(matched) < need:
            missing.append(f"{need - len(matched)} more event(s)")
        seen = Counter(e.event_type for e in matched)
        for t, n in self.event_types.items():
            if seen[t] < n:
                missing.append(f"{n - seen[t]} more {t!r}")
        return missing

    def excess(self, matched: Sequence[AuditEvent], *, exact_types: bool) -> str | None:
        """Why the matched set can never satisfy the expectation, or None."""
        if self.count is not None and len(matched) > self.count:
            return f"expected exactly {self.count} matching event(s), {len(matched)} arrived"
        if exact_types and self.event_types:
            seen = Counter(e.event_type for e in matched)
            extra = {t: n for t, n in seen.items() if n > self.event_types.get(t, 0)}
            if extra:
                parts = ", ".join(
                    f"{t!r} ×{n} (allowed {self.event_types.get(t, 0)})" for t, n in extra.items()
                )
                return f"unexpected events arrived: {parts}"
        return None

    def describe(self) -> str:
        f = self.filters
        if self.count is not None:
            what = f"exactly {self.count} event(s)"
        else:
            what = f"at least {self.min_count} event(s)"
        conds = [
            f"{k}={v!r}"
            for k, v in (
                ("event_type", f.event_type),
                ("event_category", f.event_category),
                ("event_outcome", f.event_outcome),
                ("severity", f.severity),
            )
            if v is not None
        ]
        if self.where is not None:
            conds.append(f"where={getattr(self.where, '__name__', 'predicate')}")
        if conds:
            what += " with " + ", ".join(conds)
        if self.event_types:
            what += "; of each type: " + ", ".join(
                f"{t!r} ×{n}" for t, n in self.event_types.items()
            )
        return what
