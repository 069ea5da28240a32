"""Bearer tokens: a fixed string, or a ServiceAccount token file that rotates under us."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from ._config import TOKEN_REREAD_INTERVAL

logger = logging.getLogger("kubernaut_audit")


class Secret:
    """A string that never shows itself in ``str``, ``repr`` or pickles' reprs."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        # Pickling a client's token on purpose (e.g. to a subprocess) must keep working, but
        # exceptions never carry a Secret, so a pickled error cannot contain the token.
        return (Secret, (self._value,))


class TokenSource:
    """Where the bearer token comes from.

    A file (a projected ServiceAccount token) is re-read when its modification time or size
    changed, checked at most every ``reread_interval`` seconds, and at once after a 401. A failed
    or empty read keeps the last good token.
    """

    def __init__(
        self,
        *,
        token: str | None = None,
        token_file: str | os.PathLike[str] | None = None,
        reread_interval: float = TOKEN_REREAD_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if token is not None and token_file is not None:
            raise ValueError("pass either token or token_file, not both")
        self._static = Secret(token.strip()) if token else None
        self._path = Path(token_file) if token_file is not None else None
        self._interval = reread_interval
        self._clock = clock
        self._current: Secret | None = None
        self._stamp: tuple[int, int] | None = None
        self._checked_at: float | None = None
        if self._path is not None:
            self._reload(force=True)

    @property
    def path(self) -> Path | None:
        return self._path

    def get(self) -> Secret | None:
        """The token to send now, re-reading the file when it is due."""
        if self._path is None:
            return self._static
        now = self._clock()
        if self._checked_at is None or now - self._checked_at >= self._interval:
            self._reload(force=False)
        return self._current

    def refresh_after_unauthorized(self) -> bool:
        """Re-read the file after a 401. True when a different token is now in use."""
        if self._path is None:
            return False
        before = self._current
        self._reload(force=True)
        return self._current is not None and self._current != before

    def _reload(self, *, force: bool) -> None:
        assert self._path is not None
        self._checked_at = self._clock()
        try:
            st = self._path.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if not force and stamp == self._stamp:
                return
            text = self._path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            logger.warning("token file %s unreadable (%s); keeping the last token", self._path, exc)
            return
        if not text:
            logger.warning("token file %s is empty; keeping the last token", self._path)
            return
        self._stamp = stamp
        self._current = Secret(text)
