"""The service's auth middleware: a bearer token on every ``/api/v1`` request, identity from it.

Data Storage checks the token (a Kubernetes TokenReview), then the caller's RBAC verb on the
service (``get`` before validation on every route; ``create`` or ``update`` after validation on
the routes that change things), deletes any client-sent ``X-Auth-Request-User`` and sets it to the
token's user. Handlers read the caller's identity from that header only, so the emulator's
handlers do the same: ``request.headers.get(USER_HEADER)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Final

from starlette.requests import Request
from starlette.types import Scope

from ._wire import WireResponse, problem

#: The identity header handlers read (lower case, as ASGI carries it).
USER_HEADER: Final = "x-auth-request-user"
#: The RBAC verbs the service checks.
VERBS: Final = frozenset({"get", "create", "update"})
#: Where the authenticated `TokenUser` sits in the ASGI scope.
CALLER: Final = "kubernaut_audit.emulator.caller"
API_PREFIX: Final = "/api/v1"


@dataclasses.dataclass(frozen=True)
class TokenUser:
    """Who a bearer token stands for, as the TokenReview and RBAC checks would answer.

    Attributes:
        name: The user name the token authenticates as, e.g.
            ``system:serviceaccount:kubernaut-system:gateway`` or ``alice@example.com``.
        verbs: The RBAC verbs the user holds on Data Storage: ``get`` (every ``/api/v1``
            route), ``create`` (writes, verify-chain, reconstruct), ``update`` (legal hold).
            A route needing a verb the user lacks answers 403.

    .. versionadded:: 0.2.0
    """

    name: str
    verbs: frozenset[str] = VERBS

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("TokenUser.name must be a non-empty string")
        verbs = frozenset(self.verbs)
        unknown = verbs - VERBS
        if unknown:
            raise ValueError(f"unknown verbs {sorted(unknown)}; the service checks {sorted(VERBS)}")
        object.__setattr__(self, "verbs", verbs)


def token_users(tokens: Mapping[str, str | TokenUser]) -> dict[str, TokenUser]:
    """Normalise a token → user mapping (a plain name holds every verb)."""
    users: dict[str, TokenUser] = {}
    for token, user in tokens.items():
        if not isinstance(token, str) or not token:
            raise ValueError("tokens must be non-empty strings")
        users[token] = user if isinstance(user, TokenUser) else TokenUser(user)
    return users


def unauthorized(detail: str) -> WireResponse:
    return problem(401, "about:blank", "Unauthorized", detail)


def forbidden() -> WireResponse:
    return problem(403, "about:blank", "Forbidden", "Insufficient permissions")


def unavailable() -> WireResponse:
    detail = "Authentication service unavailable"
    return problem(500, "about:blank", "Internal Server Error", detail)


def authenticate(
    scope: Scope, users: Mapping[str, TokenUser], *, down: bool = False
) -> WireResponse | None:
    """Run the base middleware on an ``/api/v1`` request.

    On success the scope's headers carry the token's user as ``X-Auth-Request-User`` (any
    client-sent one is gone) and the scope holds the `TokenUser` under `CALLER`; otherwise the
    401/403/500 to answer.
    """
    headers = [(name, value) for name, value in scope["headers"] if name != USER_HEADER.encode()]
    scope["headers"] = headers
    authorization = _header(headers, b"authorization")
    if not authorization:
        return unauthorized("Missing Authorization header")
    if not authorization.startswith("Bearer "):
        return unauthorized("Invalid Authorization header format")
    token = authorization.removeprefix("Bearer ")
    if not token:
        return unauthorized("Empty Bearer token")
    if down:
        return unavailable()
    user = users.get(token)
    if user is None:
        return unauthorized("Invalid or expired token")
    if "get" not in user.verbs:
        return forbidden()
    headers.append((USER_HEADER.encode(), user.name.encode()))
    scope[CALLER] = user
    return None


def require(request: Request, verb: str) -> WireResponse | None:
    """The route's own RBAC check (after validation): a 403 when the caller lacks ``verb``.

    Always None when auth is off.
    """
    user = request.scope.get(CALLER)
    if isinstance(user, TokenUser) and verb not in user.verbs:
        return forbidden()
    return None


def caller(request: Request) -> str | None:
    """The caller's identity as the handlers see it: the ``X-Auth-Request-User`` header.

    With auth on it is the token's user; without, whatever the client sent (as behind no
    middleware at all).
    """
    return request.headers.get(USER_HEADER)


def _header(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    # Go's HTTP/1.1 reader trims the spaces and tabs around a header value before any handler
    # sees it (uvicorn does the same on a socket; in-process nothing does), so "Bearer " reaches
    # the middleware as "Bearer".
    for key, value in headers:
        if key == name:
            return value.decode("latin-1").strip(" \t")
    return None
