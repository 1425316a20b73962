"""A tracker's bearer token, kept between calls: minted on first use, reused until shortly before it expires, minted
again once the tracker refuses it. GitHub App installation tokens (github_app.py) and ServiceNow's client
credentials tokens (oauth.py) are both this."""

from __future__ import annotations

import threading
from collections.abc import Callable

Clock = Callable[[], float]


class RefreshingToken:
    """Callable for the current token. `mint` returns (token, expiry on `clock`); the token is replaced
    `refresh_early` seconds before that expiry, and after `invalidate`. Thread-safe."""

    def __init__(self, mint: Callable[[], tuple[str, float]], clock: Clock, refresh_early: float):
        self._mint, self.clock, self._early = mint, clock, refresh_early
        self._token: str | None = None
        self._expires = 0.0
        self._lock = threading.Lock()
        self.minted = 0  # tokens minted so far
        # Told each new token before it is used (a sink's redaction registers it).
        self.observers: list[Callable[[str], None]] = []

    def __call__(self) -> str:
        with self._lock:
            if self._token is None or self.clock() >= self._expires - self._early:
                token, self._expires = self._mint()
                for observer in self.observers:
                    observer(token)
                self._token = token
                self.minted += 1
            return self._token

    def invalidate(self, token: str | None = None) -> None:
        """The tracker refused `token` (revoked, expired early, clock skew): the next call mints another. A late
        report about a token already replaced changes nothing; None drops whatever is kept."""
        with self._lock:
            if token is None or self._token == token:
                self._token = None

    def use_clock(self, clock: Clock) -> None:
        """Judge expiry on `clock` from now on (tests move it); the kept token is dropped, as its expiry was read on
        the old clock."""
        with self._lock:
            self.clock, self._token = clock, None
