"""Named defaults, and the only place that reads environment variables."""

from __future__ import annotations

import os
from typing import Final

ENV_URL: Final = "DATA_STORAGE_URL"
ENV_TOKEN: Final = "DATA_STORAGE_TOKEN"
ENV_TOKEN_FILE: Final = "DATA_STORAGE_TOKEN_FILE"
ENV_USER: Final = "DATA_STORAGE_USER"
ENV_FLUSH_INTERVAL: Final = "KUBERNAUT_AUDIT_FLUSH_INTERVAL"

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
#: Bytes of an unexpected body kept in an exception for diagnosis.
EXCERPT_BYTES: Final = 500


def env(name: str) -> str | None:
    """Return a non-empty environment variable, or None."""
    value = os.environ.get(name, "").strip()
    return value or None


def env_flush_interval() -> float | None:
    raw = env(ENV_FLUSH_INTERVAL)
    return float(raw) if raw is not None else None
