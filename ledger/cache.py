"""A bounded cache of aggregates, least recently used out first."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from domain.base import Aggregate


class _Absent:
    """Marks a stream known not to exist (the policy before its first change, a session id
    about to be created): asking the store again for it would find nothing."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


class AggregateCache:
    """Aggregates by stream id, and streams known to be absent. Entries may hold a batch's
    uncommitted changes while the batch runs; the ledger evicts every touched entry when a
    batch fails, and every stream another writer appended to when it sees that append."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[str, Aggregate | _Absent] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, stream_id: str) -> Aggregate | _Absent | None:
        """The aggregate, ABSENT when the stream is known not to exist, None when unknown."""
        item = self._items.get(stream_id)
        if item is None:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(stream_id)
        return item

    def put(self, aggregate: Aggregate) -> None:
        self._store(aggregate.id, aggregate)

    def put_absent(self, stream_id: str) -> None:
        self._store(stream_id, ABSENT)

    def _store(self, stream_id: str, item: Aggregate | _Absent) -> None:
        self._items[stream_id] = item
        self._items.move_to_end(stream_id)
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
