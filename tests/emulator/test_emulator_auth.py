"""The auth mode's settings, and the SDK against it (both faces)."""

from __future__ import annotations

import httpx
import pytest
from emulator_helpers import EVENTS, event, new_cid

from kubernaut_audit import (
    AsyncAuditClient,
    AuditClient,
    AuthenticationError,
    PermissionDeniedError,
)
from kubernaut_audit.emulator import Emulator, TokenUser

pytestmark = pytest.mark.anyio


def test_auth_is_off_by_default() -> None:
    """Without tokens= the emulator has no auth middleware, as a bare Data Storage."""
    assert Emulator().tokens is None


def test_a_plain_name_holds_every_verb() -> None:
    """A token mapped to a name stands for a user holding get, create and update."""
    emu = Emulator(tokens={"t": "alice"})
    assert emu.tokens == {"t": TokenUser("alice", frozenset({"get", "create", "update"}))}


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: TokenUser("a", frozenset({"delete"})), "unknown verbs"),
        (lambda: TokenUser(""), "non-empty"),
        (lambda: Emulator(tokens={"": "alice"}), "non-empty"),
    ],
    ids=["unknown-verb", "empty-name", "empty-token"],
)
def test_bad_auth_settings_are_refused(build: object, match: str) -> None:
    """Unknown verbs, an empty user name or an empty token fail where they are given."""
    with pytest.raises(ValueError, match=match):
        build()  # type: ignore[operator]


async def test_tokens_can_be_rotated() -> None:
    """Assigning Emulator.tokens replaces the mapping: the old token is refused at once."""
    emu = Emulator(tokens={"old": "alice"})
    emu.tokens = {"new": "alice"}
    async with httpx.AsyncClient(transport=emu.transport(), base_url="http://ds") as http:
        old = await http.get(EVENTS, headers={"Authorization": "Bearer old"})
        new = await http.get(EVENTS, headers={"Authorization": "Bearer new"})
    assert (old.status_code, new.status_code) == (401, 200)


async def test_the_async_client_authenticates_with_its_token() -> None:
    """AsyncAuditClient's bearer token passes; the writer's actor is the token's user, not user=."""
    emu = Emulator(tokens={"tok": "alice@example.com"})
    cid = new_cid()
    async with AsyncAuditClient(
        transport=emu.transport(), token="tok", user="mallory@example.com"
    ) as client:
        await client.create_audit_event(event(cid))
        [stored] = await client.list_audit_events(correlation_id=cid)
    assert (stored.actor_type, stored.actor_id) == ("user", "alice@example.com")


async def test_the_async_client_without_a_token_gets_an_authentication_error() -> None:
    """A client without a token meets the middleware's 401 as AuthenticationError."""
    emu = Emulator(tokens={"tok": "alice"})
    async with AsyncAuditClient(transport=emu.transport()) as client:
        with pytest.raises(AuthenticationError) as info:
            await client.query_audit_events(correlation_id=new_cid())
    assert info.value.detail == "Missing Authorization header"


async def test_a_reader_cannot_write() -> None:
    """A token without create gets PermissionDeniedError on a write, and queries fine."""
    emu = Emulator(tokens={"ro": TokenUser("bob", frozenset({"get"}))})
    async with AsyncAuditClient(transport=emu.transport(), token="ro") as client:
        await client.query_audit_events(correlation_id=new_cid())
        with pytest.raises(PermissionDeniedError):
            await client.create_audit_event(event(new_cid()))


def test_the_sync_client_authenticates_with_its_token() -> None:
    """AuditClient's bearer token passes the middleware over a loopback socket."""
    emu = Emulator(tokens={"tok": "system:serviceaccount:ns:sa"})
    cid = new_cid()
    with emu.serve_in_thread() as url, AuditClient(base_url=url, token="tok") as client:
        client.create_audit_event(event(cid))
        [stored] = client.list_audit_events(correlation_id=cid)
    emu.close()
    assert (stored.actor_type, stored.actor_id) == ("service", "gateway-service")
