"""What every projection is: a read model's name, the events it reads, and one ``apply``.

A projection module subclasses :class:`Projection`; its ``apply`` is one ``match`` over
event classes that changes rows through the unit of work, and whose default arm does
nothing (the runner still advances the position past the event). ``handles`` lists the
event classes it matches: only those are decoded, every other stored event is skipped by
its topic string, unread.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

from eventsourcing.utils import get_topic

from projections.decode import Delivered
from projections.unitofwork import UnitOfWork


class Projection:
    """Event -> rows for one read model (see module docstring)."""

    model: ClassVar[str] = ""
    handles: ClassVar[tuple[type, ...]] = ()
    extra_topics: ClassVar[frozenset[str]] = frozenset()
    """Topic strings handled although their class may not exist in this code base."""
    preload: ClassVar[tuple[str, ...]] = ()
    """Small working tables read whole when the cache is cold (then no miss costs a query)."""

    def __init__(self) -> None:
        self.topics = frozenset(get_topic(cls) for cls in self.handles) | self.extra_topics

    def wants(self, topic: str) -> bool:
        return topic in self.topics

    def prefetch(self, batch: list[Delivered]) -> dict[str, Iterable[Any]]:
        """Keys of rows the batch will read, by table, to load in one query each."""
        return {}

    def begin(self, uow: UnitOfWork) -> None:
        """Called at the start of each batch, before the events (e.g. to load tables)."""
        for name in self.preload:
            uow.load_all(name)

    def apply(self, event: Any, uow: UnitOfWork, position: int) -> None:
        raise NotImplementedError

    def end(self, uow: UnitOfWork) -> None:
        """Called after the batch's events, before the rows are written."""


def key_of(originator_id: str) -> str:
    """The business key of a stream id: ``12`` for ``rider:12``."""
    return originator_id.split(":", 1)[1]


def later(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a >= b else b
