"""Caches of sampling geometry, bounded by the bytes they hold.

A sampling grid of a 16K panorama is about a gigabyte, so counting entries (``lru_cache``) does
not bound memory. :class:`GridCache` keeps the most recently used entries whose tensors add up to
at most ``max_bytes``; an entry larger than that is computed and returned but never kept. No
result depends on a cache: a miss computes exactly what a hit returns.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple

import torch

#: Bytes each geometry cache of pano360.geometry may hold (tensors only): 256 MiB, about 16
#: float32 sampling grids of a 2048 x 1024 panorama.
GRID_CACHE_BYTES = 256 * 2**20


class CacheInfo(NamedTuple):
    """What :meth:`GridCache.cache_info` reports (the fields of ``functools.lru_cache``'s, and
    the bytes held)."""

    hits: int
    misses: int
    maxsize: int | None
    currsize: int
    nbytes: int


def tensor_bytes(value: Any) -> int:
    """Bytes of the tensors in ``value`` (a tensor, or tuples, lists, dicts and dataclass-like
    objects with ``__dict__`` holding tensors)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, (tuple, list)):
        return sum(tensor_bytes(v) for v in value)
    if isinstance(value, dict):
        return sum(tensor_bytes(v) for v in value.values())
    if hasattr(value, "__dict__"):
        return tensor_bytes(vars(value))
    if hasattr(value, "__slots__"):
        return sum(tensor_bytes(getattr(value, s, None)) for s in value.__slots__)
    return 0


class GridCache:
    """A least-recently-used cache bounded by the bytes of the tensors it holds.

    Args:
        name: what it caches (shown by the benchmarks).
        max_bytes: the most bytes its entries may hold together.
    """

    def __init__(self, name: str, max_bytes: int = GRID_CACHE_BYTES) -> None:
        self.name = name
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._hits = 0
        self._misses = 0

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The entry of ``key``, built by ``build()`` on a miss (and kept if it fits)."""
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            self._hits += 1
            return found[0]
        self._misses += 1
        value = build()
        size = tensor_bytes(value)
        if size <= self.max_bytes:
            self._entries[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped
        return value

    def cache_info(self) -> CacheInfo:
        return CacheInfo(self._hits, self._misses, None, len(self._entries), self._bytes)

    def cache_clear(self) -> None:
        self._entries.clear()
        self._bytes = self._hits = self._misses = 0

    def __repr__(self) -> str:
        return f"GridCache({self.name!r}, max_bytes={self.max_bytes})"


def grid_cache(name: str, max_bytes: int = GRID_CACHE_BYTES):
    """Decorator: ``functools.lru_cache`` for functions of hashable positional arguments that
    return tensors, bounded by :class:`GridCache` (``max_bytes``) rather than by a count. The
    wrapped function keeps ``cache_info()``, ``cache_clear()`` and its ``cache``."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        cache = GridCache(name, max_bytes)

        @functools.wraps(fn)
        def cached(*args: Hashable) -> Any:
            return cache.get(args, lambda: fn(*args))

        cached.cache = cache  # type: ignore[attr-defined]
        cached.cache_info = cache.cache_info  # type: ignore[attr-defined]
        cached.cache_clear = cache.cache_clear  # type: ignore[attr-defined]
        return cached

    return wrap
