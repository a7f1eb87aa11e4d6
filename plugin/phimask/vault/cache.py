"""A thread-safe LRU of lookup digest -> token. Keyed by the HMAC digest so the
process never holds a map of clear values."""

from __future__ import annotations

import threading
from collections import OrderedDict


class TokenCache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[bytes, str] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, digest: bytes) -> str | None:
        with self._lock:
            token = self._items.get(digest)
            if token is not None:
                self._items.move_to_end(digest)
                self.hits += 1
            else:
                self.misses += 1
            return token

    def put(self, digest: bytes, token: str) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[digest] = token
            self._items.move_to_end(digest)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
