"""PayloadRegistry: which model reads the ``event_data`` of which ``event_type``."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pydantic

from ._base import _REGISTRY_SLOT

if TYPE_CHECKING:
    from ._base import EventModel

logger = logging.getLogger("kubernaut_audit")


class PayloadRegistry(Mapping[str, type[pydantic.BaseModel]]):
    """A mapping from ``event_type`` to the model of its ``event_data``.

    ``kubernaut-audit codegen`` writes one (``REGISTRY``) at the end of the module it generates
    from the spec of the Data Storage you run; you can also build one by hand. Give it to a
    client (``AuditClient(payloads=REGISTRY)``) and the events it returns carry their typed
    payload in :attr:`AuditEvent.payload`, parsed on first read.

    Reading stays lenient: an event type the registry does not know keeps its payload as a
    dict, and so does a payload that does not fit its model (reported once per event type on
    the ``kubernaut_audit`` logger, at WARNING, when first read).

    Args:
        models: ``event_type`` → pydantic model; several types may share a model.
        source: where the models came from (the generator names the spec file).
        spec_sha256: the hash of that spec.

    .. versionadded:: 0.1.0
    """

    __slots__ = ("_models", "_reported", "source", "spec_sha256")

    def __init__(
        self,
        models: Mapping[str, type[pydantic.BaseModel]],
        *,
        source: str | None = None,
        spec_sha256: str | None = None,
    ) -> None:
        self._models = dict(models)
        self._reported: set[str] = set()
        self.source: str | None = source
        self.spec_sha256: str | None = spec_sha256

    def __getitem__(self, event_type: str) -> type[pydantic.BaseModel]:
        return self._models[event_type]

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def __repr__(self) -> str:
        models = len(set(self._models.values()))
        origin = f", source={self.source!r}" if self.source else ""
        return f"{type(self).__name__}({len(self)} event types, {models} models{origin})"

    def parse(
        self, event_type: str, data: Mapping[str, Any]
    ) -> pydantic.BaseModel | dict[str, Any]:
        """The payload of an ``event_type`` event as its model, or as a plain dict when the
        type is unknown or the payload does not fit (never an error).

        A payload without ``event_type`` gets the one given here before validation: the
        server writes it, some payload schemas do not declare it.

        .. versionadded:: 0.1.0
        """
        untyped = data if isinstance(data, dict) else dict(data)
        model = self._models.get(event_type)
        if model is None:
            return untyped
        try:
            return model.model_validate(_with_event_type(untyped, event_type, model))
        except pydantic.ValidationError as exc:
            self._report(event_type, model, exc)
            return untyped

    def _report(
        self, event_type: str, model: type[pydantic.BaseModel], exc: pydantic.ValidationError
    ) -> None:
        if event_type in self._reported:
            return
        self._reported.add(event_type)
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "(payload)"
        logger.warning(
            "event_data of %s events does not fit %s, kept untyped (%d error(s); %s: %s); "
            "regenerate the payload models from the spec of the Data Storage you run",
            event_type,
            model.__name__,
            exc.error_count(),
            where,
            first["msg"],
            extra={"event_type": event_type, "payload_model": model.__name__},
        )

    def _attach(self, events: Iterable[EventModel]) -> None:
        # The payloads are parsed when first read (EventModel.payload): typing every payload of
        # every page up front costs more than the envelope decode itself.
        for event in events:
            _REGISTRY_SLOT.__set__(event, self)


def _with_event_type(
    data: dict[str, Any], event_type: str, model: type[pydantic.BaseModel]
) -> dict[str, Any]:
    if "event_type" in data or "event_type" not in model.model_fields:
        return data
    return {**data, "event_type": event_type}
