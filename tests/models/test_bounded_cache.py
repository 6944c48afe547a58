"""The bounded cache behind the explainer's prefix-graph and similarity caches."""

from __future__ import annotations

import pytest

from models.bounded_cache import BoundedCache


def test_keeps_the_most_recently_used_entries() -> None:
    cache: BoundedCache[str, int] = BoundedCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1          # "a" is now the most recent
    cache.put("c", 3)                   # so "b" goes
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    cache.put("a", 4)                   # a rewrite replaces, never grows
    assert cache.get("a") == 4 and cache.get("c") == 3


def test_a_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        BoundedCache(0)
