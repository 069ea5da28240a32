"""The local Data Storage: an ASGI app over a SQLite store, in-process or on a loopback port."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping
from typing import Any

import httpx
from starlette.types import ASGIApp

from . import _server
from ._app import build_app
from ._auth import TokenUser, token_users
from ._events import Payloads
from ._faults import Faults
from ._state import Clock, EmulatorStats, State
from ._trail import Trail


class Emulator:
    """Kubernaut's Data Storage audit API as the real service behaves, with faults on demand.

    Use it in-process through :meth:`transport`, or on a loopback port with :meth:`serve`
    (asyncio) or :meth:`serve_in_thread`. "Behaves" covers the service's defaults (page limit
    50, an empty filter meaning no filter, newest first), its omitted empty fields, its bodies
    as Go writes them (every documented error body byte for byte), its checks of a write in the
    service's order, its 202 to the dead-letter queue, and the audit-trail operations.

    Args:
        db: SQLite database: ``":memory:"`` (the default) or a file path.
        faults: Faults to start with; none by default. Change :attr:`faults` at any time.
        admin: Serve the control routes under ``/_emulator/`` (``GET``/``PUT faults``,
            ``GET stats``, ``POST reset``, ``POST replay``, ``POST tamper``); otherwise they are
            unknown paths.
        clock: Returns the wall-clock time (aware datetime) the emulator judges timestamps by:
            the 7-day/60-minute write window and duration forms of ``since``/``until``.
        hash_key: The hash-chain key (its raw bytes, as the service uses its secret): rows are
            then chained with HMAC-SHA256, as in production; without one, unkeyed SHA-256, as in
            the service's integration tests.
        spec: The OpenAPI spec of the Data Storage you run (a path to its JSON or YAML file,
            YAML needing PyYAML, or the parsed document). Writes are then held to its
            ``event_data`` union as the service holds them: an unknown
            ``event_data.event_type`` or a payload that does not fit its schema is refused
            with 400, and members the payload schema does not declare are dropped. Without
            it, any payload with an ``event_type`` is stored whole.
        tokens: Turn on the service's auth middleware: every ``/api/v1`` request then needs
            ``Authorization: Bearer <token>`` with a token of this mapping (401 otherwise,
            before any 400), and the token decides the caller's identity: a client-sent
            ``X-Auth-Request-User`` is replaced by the token's user (the actor of a write, the
            ``exported_by``, ``placed_by`` and ``released_by`` of the audit-trail operations).
            A value is the user name (holding every verb) or a :class:`TokenUser` with the
            verbs it holds (403 on a route needing another). ``/readyz`` stays open. Off
            (None) by default, as for a Data Storage behind no middleware.

    .. versionchanged:: 0.2.0
       ``spec`` and ``tokens``.
    """

    def __init__(
        self,
        db: str = ":memory:",
        *,
        faults: Faults | None = None,
        admin: bool = False,
        clock: Clock | None = None,
        hash_key: str | bytes | None = None,
        spec: str | os.PathLike[str] | Mapping[str, Any] | None = None,
        tokens: Mapping[str, str | TokenUser] | None = None,
    ) -> None:
        key = hash_key.encode() if isinstance(hash_key, str) else hash_key
        payloads = Payloads(spec if isinstance(spec, Mapping) or spec is None else os.fspath(spec))
        self._state = State(
            db=db, faults=faults, clock=clock, hash_key=key, payloads=payloads, tokens=tokens
        )
        self._trail = Trail(self._state)
        self._app = build_app(self._state, admin=admin, trail=self._trail)

    @property
    def app(self) -> ASGIApp:
        """The ASGI application."""
        return self._app

    @property
    def tokens(self) -> Mapping[str, TokenUser] | None:
        """The token → user mapping of the auth mode, or None when auth is off.

        Assign a new mapping (or None) at any time, e.g. to rotate tokens.

        .. versionadded:: 0.2.0
        """
        return self._state.users

    @tokens.setter
    def tokens(self, tokens: Mapping[str, str | TokenUser] | None) -> None:
        self._state.users = token_users(tokens) if tokens is not None else None

    @property
    def event_types(self) -> frozenset[str] | None:
        """The ``event_data.event_type`` values writes may use, or None when any is taken."""
        return self._state.payloads.event_types

    @property
    def faults(self) -> Faults:
        """The active faults; mutate them or assign new ones (which reseeds the draws)."""
        return self._state.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self._state.faults = faults

    @property
    def stats(self) -> EmulatorStats:
        """A snapshot of request counts per route, correlation id and status."""
        return self._state.stats()

    def reset_stats(self) -> None:
        """Zero the request counts."""
        self._state.reset_stats()

    def transport(self) -> httpx.AsyncBaseTransport:
        """An httpx transport that calls the app in-process: no sockets, any event loop."""
        return httpx.ASGITransport(app=self._app)

    def serve(
        self, host: str = "127.0.0.1", port: int = 0
    ) -> contextlib.AbstractAsyncContextManager[str]:
        """Serve over HTTP from the running asyncio loop; yields the base URL.

        ``port=0`` picks a free port. The server stops when the block exits.
        """
        return _server.serve(self._app, host, port)

    def serve_in_thread(
        self, host: str = "127.0.0.1", port: int = 0
    ) -> contextlib.AbstractContextManager[str]:
        """Serve over HTTP from a background thread; yields the base URL, joins on exit."""
        return _server.serve_in_thread(self._app, host, port)

    def insert_events(self, events: Iterable[Mapping[str, Any]]) -> list[str]:
        """Store events directly, as a writer would send them; return their ids.

        Defaults are filled and ``event_data`` checked and normalised as for an HTTP write, but
        the timestamp window is not enforced, so tests can plant old rows, and a parent that is
        not stored is taken on trust. Raises ValueError when an event fails the request schema
        or the typed decoder, or its ``event_data`` is too large or too deep.
        """
        return self._state.insert_events(events)

    @property
    def export_certificate_pem(self) -> str:
        """The certificate export signatures are made with (the service never serves its own;
        the emulator does, so a test can check a signature as an auditor would).

        .. versionadded:: 0.2.0
        """
        return self._trail.signer.certificate_pem

    def tamper_event(self, event_id: str, **changes: Any) -> None:
        """Change a stored event behind the service's back, for tests of chain verification.

        ``changes`` name columns as the query returns them (``event_data`` a dict,
        ``event_timestamp`` an aware datetime or RFC 3339 text, ``event_hash`` or
        ``previous_event_hash`` None for a row written without a hash). The row's hashes are
        left as they were, so a verification sees the change. Also ``POST /_emulator/tamper``
        with ``{"event_id": ..., "changes": {...}}`` when ``admin`` is on.

        Raises:
            KeyError: no stored event has this id.
            ValueError: a column that cannot be changed, or a value of the wrong type.

        .. versionadded:: 0.2.0
        """
        self._trail.tamper(event_id, changes)

    def replay_dead_letters(self) -> int:
        """Replay the dead-letter queue now (unless the database is down); return how many."""
        return self._state.replay()

    def close(self) -> None:
        """Close the store."""
        self._state.store.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
