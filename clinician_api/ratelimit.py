"""An in-process sliding-window limiter for the token endpoint: N attempts per key within W seconds.

Per API process; behind several replicas each keeps its own window, which bounds guessing per replica and needs
no shared state. Keys are (client address, username), so one noisy address cannot lock other users out.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

TOKEN_ATTEMPTS = 10
TOKEN_WINDOW_SECONDS = 60.0


class SlidingWindowLimiter:
    def __init__(
        self, limit: int, window_seconds: float, *, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("limit must be ≥ 1 and the window positive")
        self.limit = limit
        self.window = window_seconds
        self._clock = clock
        self._max_keys = max_keys
        self._hits: dict[Hashable, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: Hashable) -> int | None:
        """Count one attempt; None when allowed, else the whole seconds to wait before the next one is allowed."""
        now = self._clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self._max_keys:
                    self._forget_idle(now)
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, math.ceil(hits[0] + self.window - now))
            hits.append(now)
            return None

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[key]
