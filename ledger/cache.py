"""A bounded cache of aggregates, least recently used out first."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from domain.base import Aggregate


class AggregateCache:
    """Aggregates by stream id. Entries may hold a batch's uncommitted changes while the
    batch runs; the ledger evicts every touched entry when a batch fails."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[str, Aggregate] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, stream_id: str) -> Aggregate | None:
        item = self._items.get(stream_id)
        if item is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(stream_id)
        return item

    def put(self, aggregate: Aggregate) -> None:
        self._items[aggregate.id] = aggregate
        self._items.move_to_end(aggregate.id)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def evict(self, stream_ids: Iterable[str]) -> None:
        for stream_id in stream_ids:
            self._items.pop(stream_id, None)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, stream_id: str) -> bool:
        return stream_id in self._items
