"""Legal hold (place, list, release) answers as the service does."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from trail_samples import LEGAL_HOLD, USER, VERIFY, new_cid, plain_events

from kubernaut_audit.emulator import Emulator, Faults

pytestmark = pytest.mark.anyio

CLOCK = [datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)]
HOLDER = USER["X-Auth-Request-User"]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    CLOCK[0] = datetime(2026, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    emu = Emulator(clock=lambda: CLOCK[0])
    yield emu
    emu.close()


@pytest.fixture
async def http(emulator: Emulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=emulator.transport(), base_url="http://ds") as client:
        yield client


async def _place(http: httpx.AsyncClient, cid: str, reason: str = "SEC case 1") -> httpx.Response:
    return await http.post(LEGAL_HOLD, json={"correlation_id": cid, "reason": reason}, headers=USER)


async def _release(http: httpx.AsyncClient, cid: str, reason: str = "closed") -> httpx.Response:
    return await http.request(
        "DELETE", f"{LEGAL_HOLD}/{cid}", json={"release_reason": reason}, headers=USER
    )


async def _rows(http: httpx.AsyncClient, cid: str) -> list[dict[str, Any]]:
    response = await http.get("/api/v1/audit/events", params={"correlation_id": cid, "limit": 100})
    rows: list[dict[str, Any]] = response.json()["data"]
    return rows


async def test_place_holds_every_row_with_the_token_user(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """Placing holds all rows, names the header's user and answers in struct order."""
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 3))
    response = await _place(http, cid)
    assert (
        response.content
        == (
            f'{{"correlation_id":"{cid}","events_affected":3,"placed_by":"{HOLDER}",'
            '"placed_at":"2026-03-04T05:06:07.123456Z","reason":"SEC case 1"}\n'
        ).encode()
    )
    rows = await _rows(http, cid)
    assert {(r["legal_hold"], r["legal_hold_reason"], r["legal_hold_placed_by"]) for r in rows} == {
        (True, "SEC case 1", HOLDER)
    }


async def test_placing_twice_overwrites(emulator: Emulator, http: httpx.AsyncClient) -> None:
    """A second placement is another 200 that overwrites reason and holder; no 409."""
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 1))
    await _place(http, cid, "first")
    assert (await _place(http, cid, "second")).status_code == 200
    assert (await _rows(http, cid))[0]["legal_hold_reason"] == "second"


async def test_rows_stored_after_the_hold_are_not_held(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """A hold covers the rows that existed when it was placed."""
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 1))
    await _place(http, cid)
    emulator.insert_events(plain_events(cid, 1, datetime.now(UTC) - timedelta(minutes=1)))
    assert sorted(r["legal_hold"] for r in await _rows(http, cid)) == [False, True]


async def test_unknown_correlation_id_is_404(http: httpx.AsyncClient) -> None:
    """Placing a hold on nothing is 404 not-found naming the id."""
    response = await _place(http, "rr-nobody")
    assert response.json() == {
        "type": "https://kubernaut.ai/problems/not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "No events found for correlation_id: rr-nobody",
    }


async def test_release_clears_the_hold_and_keeps_the_holder(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """Release appends the reason, clears the flag, keeps placed_by and placed_at."""
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 2))
    await _place(http, cid, "hold")
    CLOCK[0] += timedelta(seconds=1)
    response = await _release(http, cid, "case closed")
    assert response.json() == {
        "correlation_id": cid,
        "events_released": 2,
        "released_by": HOLDER,
        "released_at": "2026-03-04T05:06:08.123456Z",
    }
    row = (await _rows(http, cid))[0]
    assert (row["legal_hold"], row["legal_hold_reason"], row["legal_hold_placed_by"]) == (
        False,
        "hold [Released: case closed]",
        HOLDER,
    )
    assert row["legal_hold_placed_at"] == "2026-03-04T05:06:07.123456Z"


async def test_releasing_twice_is_404(emulator: Emulator, http: httpx.AsyncClient) -> None:
    """Nothing held any more: the second release is a 404."""
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 1))
    await _place(http, cid)
    await _release(http, cid)
    response = await _release(http, cid)
    assert (response.status_code, response.json()["detail"]) == (
        404,
        f"No legal hold found for correlation_id: {cid}",
    )


async def test_list_is_empty_array_without_holds(http: httpx.AsyncClient) -> None:
    """No holds: holds is [] and total 0."""
    response = await http.get(LEGAL_HOLD)
    assert response.content == b'{"holds":[],"total":0}\n'


async def test_list_counts_held_rows_newest_first(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """Holds come newest first; events_affected counts only rows still held."""
    old, new = new_cid(), new_cid()
    emulator.insert_events(plain_events(old, 2))
    emulator.insert_events(plain_events(new, 1))
    await _place(http, old, "older")
    CLOCK[0] += timedelta(milliseconds=500)
    await _place(http, new, "newer")
    emulator.insert_events(plain_events(old, 1, datetime.now(UTC) - timedelta(minutes=1)))
    body = (await http.get(LEGAL_HOLD)).json()
    assert [(h["correlation_id"], h["events_affected"]) for h in body["holds"]] == [
        (new, 1),
        (old, 2),
    ]
    assert body["total"] == 2


async def test_hold_fields_do_not_break_the_chain(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """Placing and releasing a hold leaves the hash chain intact."""
    cid = new_cid()
    emulator.insert_events(plain_events(cid, 3))
    await _place(http, cid)
    await _release(http, cid)
    assert (await http.post(VERIFY, json={"correlation_id": cid})).json()["is_valid"] is True


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"correlation_id": "", "reason": "r"}, "missing-correlation-id"),
        ({"correlation_id": "rr-1", "reason": ""}, "missing-reason"),
        ({"correlation_id": "rr-1"}, "validation-error"),
        ({"correlation_id": 5, "reason": "r"}, "validation-error"),
        ({"correlation_id": "a", "reason": "r", "Reason": 5}, "invalid-request"),
    ],
)
async def test_place_refusals(http: httpx.AsyncClient, body: dict[str, Any], kind: str) -> None:
    """Schema failures get the opaque 400, empty fields and decode failures the handler's."""
    response = await http.post(LEGAL_HOLD, json=body, headers=USER)
    assert (response.status_code, response.json()["type"].rsplit("/", 1)[1]) == (400, kind)


async def test_place_without_identity_is_401(http: httpx.AsyncClient) -> None:
    """Without the identity header (no auth middleware) the handler answers 401."""
    response = await http.post(LEGAL_HOLD, json={"correlation_id": "a", "reason": "r"})
    assert response.status_code == 401


async def test_release_needs_a_reason(http: httpx.AsyncClient) -> None:
    """An empty release_reason is the handler's 400; no body is the opaque 400."""
    empty = await _release(http, "rr-1", "")
    no_body = await http.request("DELETE", f"{LEGAL_HOLD}/rr-1", headers=USER)
    assert empty.json()["type"].endswith("/missing-release-reason")
    assert no_body.json()["type"].endswith("/validation-error")


async def test_escaped_slash_stays_escaped_in_the_path(
    emulator: Emulator, http: httpx.AsyncClient
) -> None:
    """chi routes %2F on the raw path and hands the handler the undecoded segment."""
    response = await _release(http, "a%2Fb")
    assert response.json()["detail"] == "No legal hold found for correlation_id: a%2Fb"


async def test_database_failure_is_a_500(emulator: Emulator, http: httpx.AsyncClient) -> None:
    """A database failure answers database-error with a fixed detail."""
    emulator.faults = Faults(database_down=True)
    response = await http.get(LEGAL_HOLD)
    assert (response.status_code, response.json()["detail"]) == (500, "Failed to query legal holds")
