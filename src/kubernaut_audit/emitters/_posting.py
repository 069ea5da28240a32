"""Writing a batch as the services' audit writer does: one POST, retried, then dropped."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Final, Literal

import anyio
import httpx

from ._records import Entry, Ledger

BATCH_PATH: Final = "/api/v1/audit/events/batch"
Verdict = Literal["stored", "failed", "refused"]


def _jsonable(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class BatchPoster:
    """POSTs batches to the batch endpoint and books the outcome in a :class:`Ledger`.

    A failed write is retried after each of ``retry_delays`` (±``retry_jitter``, relative) and
    then dropped; a 4xx answer (429 included) drops it at once. Sleeps use the event loop's
    clock, so a fake clock drives them.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        ledger: Ledger,
        *,
        retry_delays: Sequence[float],
        retry_jitter: float,
        rng: random.Random,
        timer: Callable[[], float],
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._retry_delays = tuple(retry_delays)
        self._retry_jitter = retry_jitter
        self._rng = rng
        self._timer = timer

    async def write(self, batch: list[Entry]) -> None:
        """Write one batch: stored, or dropped once the attempts are spent or it is refused."""
        body = json.dumps([entry.event for entry in batch], default=_jsonable).encode()
        for attempt in range(1, len(self._retry_delays) + 2):
            self._ledger.count_post(batch, attempt)
            verdict, ids = await self._post(body)
            if verdict == "stored":
                self._ledger.mark_stored(batch, ids, self._timer())
                return
            self._ledger.count_failed_post()
            if verdict == "refused" or attempt > len(self._retry_delays):
                break
            spread = self._rng.uniform(-self._retry_jitter, self._retry_jitter)
            await anyio.sleep(self._retry_delays[attempt - 1] * (1 + spread))
        self._ledger.mark_dropped(batch)

    async def _post(self, body: bytes) -> tuple[Verdict, list[str]]:
        try:
            response = await self._client.post(
                BATCH_PATH, content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError:
            return "failed", []
        if response.is_success:
            try:
                ids = response.json().get("event_ids") or []
            except (ValueError, AttributeError):
                ids = []  # stored all the same; the body just did not say which ids
            return "stored", [str(event_id) for event_id in ids]
        if 400 <= response.status_code < 500:
            return "refused", []
        return "failed", []
