"""Decoded stretches of the log, shared by the runners of one process.

Each of the supervisor's runners reads the log after its own position. Catching up after
downtime, eight runners would each read and decode the same rows: most of their work. They
read through one :class:`SharedLog` instead: the log is cut into blocks of ``block`` ids,
each read and decoded once (the topics any runner wants) and kept for the runners that come
after, the ``keep`` most recently used. Blocks are plain stretches of committed, immutable,
densely numbered events, so sharing them changes nothing about what a runner applies: it
still applies everything after its own position, under its own tracking lock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from adapters.store import Store
from projections.decode import Batch, Decoder


class SharedLog:
    """Blocks of decoded events (see module docstring); thread-safe."""

    def __init__(
        self, store: Store, topics: frozenset[str], *, block: int = 2000, keep: int = 12
    ) -> None:
        self.recorder = store.recorder
        self.topics = topics
        self.block = block
        self.keep = keep
        self.decoder = Decoder(store.mapper)
        self._blocks: OrderedDict[int, Batch] = OrderedDict()
        self._lock = threading.Lock()
        self.reads = 0

    def after(self, position: int) -> Batch | None:
        """The events after ``position`` up to the end of its block (None: nothing yet)."""
        index = position // self.block
        start, end = index * self.block, (index + 1) * self.block
        with self._lock:
            found = self._blocks.get(index)
            if found is None or (found.last < end and found.last <= position):
                found = self._extend(index, start, end, found)
                if found is None:
                    return None
            else:
                self._blocks.move_to_end(index)
        if found.last <= position:
            return None
        return found.after(position)

    def _extend(self, index: int, start: int, end: int, found: Batch | None) -> Batch | None:
        since = start if found is None else found.last
        rows = self.recorder.select_rows(since, end - since)
        self.reads += 1
        if not rows:
            return found
        more = self.decoder.batch(rows, self.topics.__contains__)
        block = more if found is None else Batch(found.first, more.last, found.events + more.events)
        self._blocks[index] = block
        self._blocks.move_to_end(index)
        while len(self._blocks) > self.keep:
            self._blocks.popitem(last=False)
        return block
