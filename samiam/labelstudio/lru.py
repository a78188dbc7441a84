"""A small thread-safe LRU cache that computes each missing key once, even under concurrent requests."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class LRUCache(Generic[V]):
    """Least-recently-used cache with at most ``capacity`` entries.

    ``get_or_compute`` runs the computation outside the cache lock, and callers asking for a key
    that is being computed wait for that result instead of computing it again.

    Attributes:
        hits: lookups answered from the cache (including waits on an in-flight computation).
        misses: computations run.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"cache capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        self._pending: dict[Hashable, threading.Event] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._items.clear()

    def get(self, key: Hashable) -> V | None:
        """The cached value (marked as recently used), or None."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            return None

    def put(self, key: Hashable, value: V) -> None:
        """Store a value, evicting the least recently used entry when full."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """Return the cached value for ``key``, computing and storing it if missing.

        Args:
            key: cache key.
            compute: builds the value; exceptions propagate and nothing is cached.

        Returns:
            The value.
        """
        while True:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    self.hits += 1
                    return self._items[key]
                event = self._pending.get(key)
                if event is None:
                    event = threading.Event()
                    self._pending[key] = event
                    self.misses += 1
                    owner = True
                else:
                    owner = False
            if not owner:
                event.wait()
                continue  # the owner stored it (or failed: then this caller computes it itself)
            try:
                value = compute()
                self.put(key, value)
                return value
            finally:
                with self._lock:
                    self._pending.pop(key, None)
                event.set()
