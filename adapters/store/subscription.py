"""A polling subscription to the notification log, for MySQL and SQLite (DESIGN.md gap 2).

Appends are serialised and numbered densely (see recorder.py), so a reader that has seen id N
has seen every event committed before N: polling "id > last seen" never skips one. Appends
made by this process wake the poller at once; others are picked up within ``interval``.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import Notification, Subscription

if TYPE_CHECKING:
    from adapters.store.recorder import LedgerRecorder


class PollingSubscription(Subscription[Any]):
    """Iterates notifications after ``gt`` for ever (until stopped), polling the log."""

    def __init__(
        self,
        recorder: LedgerRecorder,
        gt: int | None = None,
        topics: Sequence[str] = (),
        *,
        interval: float = 0.2,
        batch: int = 500,
    ) -> None:
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._ledger_recorder = recorder
        self._interval = interval
        self._batch = batch
        self._buffer: deque[Notification] = deque()
        self._stopped = threading.Event()

    def stop(self) -> None:
        super().stop()
        self._stopped.set()
        with self._ledger_recorder._appended:
            self._ledger_recorder._appended.notify_all()

    def __next__(self) -> Notification:
        while not self._buffer:
            if self._has_been_stopped:
                raise StopIteration
            # Everything up to the head is committed; read the head first so that a topic
            # filter can skip ahead to it without passing over a later commit.
            head = self._ledger_recorder.head() if self._topics else None
            fetched = self._ledger_recorder.select_notifications(
                start=self._last_notification_id or 0,
                limit=self._batch,
                stop=head,
                topics=self._topics,
                inclusive_of_start=False,
            )
            if fetched:
                self._buffer.extend(fetched)
                self._last_notification_id = fetched[-1].id
                break
            if head is not None:
                self._last_notification_id = max(self._last_notification_id or 0, head)
            self._ledger_recorder.wait_for_append(self._interval)
        if self._has_been_stopped:
            raise StopIteration
        return self._buffer.popleft()
