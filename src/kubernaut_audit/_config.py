"""Named defaults, the client's settings validated when it is built, and the only place that
reads environment variables."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import UnionType
from typing import Final

import httpx

from ._exceptions import ConfigurationError
from ._retry import RetryHook, RetryPolicy, log_retry
from ._tracebacks import hide_audit_errors
from ._writers import WriterKind, check_writer

# pytest leaves this module's frames out of the traceback of an AuditError (see _tracebacks).
__tracebackhide__ = hide_audit_errors

ENV_URL: Final = "DATA_STORAGE_URL"
ENV_TOKEN: Final = "DATA_STORAGE_TOKEN"
ENV_TOKEN_FILE: Final = "DATA_STORAGE_TOKEN_FILE"
ENV_USER: Final = "DATA_STORAGE_USER"
ENV_FLUSH_INTERVAL: Final = "KUBERNAUT_AUDIT_FLUSH_INTERVAL"
ENV_WRITER: Final = "KUBERNAUT_AUDIT_WRITER"

#: Per-request HTTP timeout in seconds (connect, read, write and pool each).
DEFAULT_TIMEOUT: Final = 10.0
#: The server's hard cap on ``limit``; the SDK pages with it to make the fewest requests.
MAX_PAGE_LIMIT: Final = 1000
#: The server's cap on events per batch write.
MAX_BATCH_SIZE: Final = 500
#: A file token is re-read at most this often (seconds), and once after a 401.
TOKEN_REREAD_INTERVAL: Final = 60.0
#: Response bodies larger than this are aborted while streaming (bytes).
DEFAULT_MAX_RESPONSE_BYTES: Final = 64 * 1024 * 1024
#: The buffered audit writer's flush interval the SDK is tuned for (ADR-038), seconds.
DEFAULT_FLUSH_INTERVAL: Final = 2.0
#: The writer kind waits assume: work it out from what they see.
DEFAULT_WRITER: Final[WriterKind] = "auto"
#: Bytes of an unexpected body kept in an exception for diagnosis.
EXCERPT_BYTES: Final = 500


def env(name: str) -> str | None:
    """Return a non-empty environment variable, or None."""
    value = os.environ.get(name, "").strip()
    return value or None


def env_flush_interval() -> float | None:
    """``KUBERNAUT_AUDIT_FLUSH_INTERVAL`` as seconds, or None when unset.

    Raises:
        ConfigurationError: the variable is not a positive, finite number of seconds.
    """
    raw = env(ENV_FLUSH_INTERVAL)
    return None if raw is None else flush_interval_from(raw, name=ENV_FLUSH_INTERVAL)


def env_writer() -> WriterKind | None:
    """``KUBERNAUT_AUDIT_WRITER`` as a writer kind, or None when unset.

    Raises:
        ConfigurationError: the variable names no writer kind.
    """
    raw = env(ENV_WRITER)
    return None if raw is None else check_writer(raw, name=ENV_WRITER)


def check_seconds(value: object, *, name: str) -> float:
    """``value`` as a positive, finite number of seconds, else a ConfigurationError naming
    ``name`` (an argument, an option or an environment variable)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(
            f"{name} must be a positive, finite number of seconds, got {value!r}"
        )
    return float(value)


def flush_interval_from(value: object, *, name: str) -> float:
    """A flush interval given as a number or as text (an option, an ini value, a variable)."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ConfigurationError(f"{name}={value!r} is not a number of seconds") from None
    return check_seconds(value, name=name)


def check_timeout(value: object) -> httpx.Timeout:
    """``timeout=``: positive, finite seconds, or an ``httpx.Timeout`` whose parts each are
    (or are None, httpx's "no limit")."""
    if isinstance(value, httpx.Timeout):
        for part in ("connect", "read", "write", "pool"):
            seconds = getattr(value, part)
            if seconds is not None:
                check_seconds(seconds, name=f"timeout.{part}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            f"timeout must be a number of seconds or an httpx.Timeout, got {value!r}"
        )
    return httpx.Timeout(check_seconds(value, name="timeout"))


#: The base URL of a client whose transport is the server itself (httpx.ASGITransport, a mock).
IN_PROCESS_URL: Final = "http://data-storage.invalid"


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """Every setting of a client, resolved (arguments first, then the environment, then the
    defaults) and validated: built by :func:`client_settings`."""

    base_url: str
    token: str | None
    token_file: str | os.PathLike[str] | None
    user: str | None
    timeout: httpx.Timeout
    headers: dict[str, str]
    retry: RetryPolicy
    hooks: tuple[RetryHook, ...]
    max_response_bytes: int
    flush_interval: float
    writer: WriterKind


def client_settings(
    *,
    base_url: str | None,
    token: str | None,
    token_file: str | os.PathLike[str] | None,
    user: str | None,
    timeout: object,
    headers: Mapping[str, str] | None,
    retry: RetryPolicy | None,
    retry_hooks: Sequence[RetryHook] | None,
    max_response_bytes: int,
    flush_interval: float | None,
    writer: WriterKind | None = None,
    http_base_url: str | None = None,
    in_process: bool = False,
) -> ClientSettings:
    """Resolve and validate a client's settings before anything else happens.

    Args:
        http_base_url: the base URL of a caller's own ``httpx.AsyncClient``, if any.
        in_process: a transport was given, so no address is needed.

    Raises:
        ConfigurationError: naming the argument or environment variable at fault.
    """
    if token is not None and token_file is not None:
        raise ConfigurationError("pass either token= or token_file=, not both")
    _check_optional("token", token, str)
    _check_optional("user", user, str)
    _check_optional("token_file", token_file, str | os.PathLike)
    if token is None and token_file is None:
        token = env(ENV_TOKEN)
        if token is None:
            token_file = env(ENV_TOKEN_FILE)
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ConfigurationError(f"retry must be a RetryPolicy, got {retry!r}")
    return ClientSettings(
        base_url=_base_url(base_url, http_base_url, in_process=in_process),
        token=token,
        token_file=token_file,
        user=user if user is not None else env(ENV_USER),
        timeout=check_timeout(timeout),
        headers=_headers(headers),
        retry=retry or RetryPolicy(),
        hooks=_hooks(retry_hooks),
        max_response_bytes=_max_response_bytes(max_response_bytes),
        flush_interval=(
            check_seconds(flush_interval, name="flush_interval")
            if flush_interval is not None
            else env_flush_interval() or DEFAULT_FLUSH_INTERVAL
        ),
        writer=(
            check_writer(writer, name="writer")
            if writer is not None
            else env_writer() or DEFAULT_WRITER
        ),
    )


def _check_optional(name: str, value: object, kind: type | UnionType) -> None:
    if value is not None and not isinstance(value, kind):
        raise ConfigurationError(f"{name} has the wrong type: {type(value).__name__}")


def _base_url(given: str | None, http_base_url: str | None, *, in_process: bool) -> str:
    _check_optional("base_url", given, str)
    name, url = "base_url", given or None
    if url is None and (url := env(ENV_URL)) is not None:
        name = ENV_URL
    if url is None and http_base_url:
        name, url = "http_client.base_url", http_base_url
    if url is None:
        if not in_process:
            raise ConfigurationError(f"no Data Storage address: pass base_url= or set {ENV_URL}")
        url = IN_PROCESS_URL
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"{name} must start with http:// or https://, got {url!r}")
    return url.rstrip("/")


def _headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise ConfigurationError(f"headers must be a mapping of str to str, got {headers!r}")
    for key, value in headers.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigurationError(f"headers must map str to str, got {key!r}: {value!r}")
    return dict(headers)


def _hooks(hooks: Sequence[RetryHook] | None) -> tuple[RetryHook, ...]:
    if hooks is None:
        return (log_retry,)
    chosen = tuple(hooks)
    for hook in chosen:
        if not callable(hook):
            raise ConfigurationError(f"retry_hooks must be callables, got {hook!r}")
    return chosen


def _max_response_bytes(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"max_response_bytes must be an int >= 1, got {value!r}")
    return value
