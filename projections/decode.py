"""Stored event rows -> domain events, fast, and identical to the store's mapper.

eventsourcing's ``Mapper.to_domain_event`` adds per-event overhead around the transcoder
(a StoredEvent, an id convertor lookup, a recursive walk of every value); here one orjson
parse, a byte search that skips the walk when no value is transcoded, and a walk of the
top-level values only otherwise. In a rebuild of a million events that is seconds. Anything this
fast path does not handle exactly like the mapper (a cipher or compressor on the mapper, an
event class with ``class_version`` > 1, a transcoded value it does not know) goes through
the mapper itself, so the result is always what ``mapper.to_domain_event`` would return
(a unit test compares the two for every event class).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import resolve_topic

from adapters.store import mapper as store_mapper

SEALED_MARK = b'"_sealed_"'  # a rider's sealed personal data: only the store's mapper opens it

Row = tuple[int, str, int, str, bytes, Any]
"""What ``LedgerRecorder.select_rows`` returns: id, originator, version, topic, state, time."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """A domain event with its place in the log (the notification id) and its topic."""

    position: int
    event: Any
    topic: str = ""


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive rows of the log, ``first``..``last`` (ids), as the events among them that
    a projection reads; the others are only passed over (the position still moves)."""

    first: int
    last: int
    events: list[Delivered]

    def only(self, topics: frozenset[str]) -> Batch:
        """The same rows, keeping the events of these topics."""
        return Batch(self.first, self.last, [d for d in self.events if d.topic in topics])

    def after(self, position: int) -> Batch:
        """The part of the batch after ``position``."""
        if position < self.first:
            return self
        return Batch(position + 1, self.last, [d for d in self.events if d.position > position])


class Decoder:
    """Decodes stored rows like the store's mapper does, without its per-object JSON hook.
    Pass the store's mapper (``store.mapper``): it opens riders' sealed personal data."""

    def __init__(self, mapper: Any = None) -> None:
        self.mapper = mapper or store_mapper
        transcoder = self.mapper.transcoder
        self.names: dict[str, Any] = dict(getattr(transcoder, "names", {}))
        self.fast = not getattr(self.mapper, "cipher", None) and not getattr(
            self.mapper, "compressor", None
        )
        self._classes: dict[str, Any] = {}
        self._plans: dict[type, tuple[str, ...]] = {}

    def event_class(self, topic: str) -> Any:
        cls = self._classes.get(topic)
        if cls is None:
            try:
                cls = resolve_topic(topic)
            except Exception:  # a class this code base does not have (yet): keep it raw
                cls = RawEvent
            self._classes[topic] = cls
        return cls

    def decode(self, row: Row) -> Any:
        _position, originator_id, version, topic, state, _recorded = row
        cls = self.event_class(topic)
        if cls is RawEvent:
            return RawEvent(originator_id, version, topic, decode_raw(row))
        if not self.fast or getattr(cls, "class_version", 1) != 1 or SEALED_MARK in state:
            return self._slow(originator_id, version, topic, state)
        data = orjson.loads(state)
        transcoded = state.count(b'"_type_"')
        if transcoded:
            try:
                self._restore(cls, data, transcoded)
            except _Unknown:
                return self._slow(originator_id, version, topic, state)
        if data.pop("class_version", 1) != 1:
            return self._slow(originator_id, version, topic, state)
        data["originator_id"] = originator_id
        data["originator_version"] = version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", data)
        return event

    def _restore(self, cls: type, data: dict[str, Any], transcoded: int) -> None:
        """Turn the transcoded values back into objects. First only the fields the class
        declares as datetime/Decimal (every event has two datetimes); if that does not
        account for every ``"_type_"`` in the bytes, walk all values."""
        plan = self._plans.get(cls)
        if plan is None:
            plan = self._plans[cls] = _scalar_transcoded_fields(cls)
        restored = 0
        for name in plan:
            value = data.get(name)
            if type(value) is dict:
                data[name] = self._value(value)
                restored += 1
        if restored == transcoded:
            return
        for name, value in data.items():
            if type(value) is dict or type(value) is list:
                data[name] = self._value(value)

    def _value(self, value: Any) -> Any:
        if type(value) is dict:
            if len(value) == 2 and "_type_" in value and "_data_" in value:
                kind = value["_type_"]
                if kind == "datetime_iso":
                    return datetime.fromisoformat(value["_data_"])
                if kind == "decimal_str":
                    return Decimal(value["_data_"])
                if kind == "uuid_hex":
                    return UUID(value["_data_"])
                transcoding = self.names.get(kind)
                if transcoding is None:
                    raise _Unknown(kind)
                return transcoding.decode(self._value(value["_data_"]))
            for key, item in value.items():
                if type(item) is dict or type(item) is list:
                    value[key] = self._value(item)
            return value
        if type(value) is list:
            return [self._value(v) if type(v) in (dict, list) else v for v in value]
        return value

    def _slow(self, originator_id: str, version: int, topic: str, state: bytes) -> Any:
        stored = StoredEvent(
            originator_id=originator_id, originator_version=version, topic=topic, state=state
        )
        return self.mapper.to_domain_event(stored)

    def batch(self, rows: Sequence[Row], wanted: Callable[[str], bool]) -> Batch:
        """The rows as a Batch of the events whose topic is ``wanted`` (only those are
        decoded)."""
        decode = self.decode
        events = [Delivered(row[0], decode(row), row[3]) for row in rows if wanted(row[3])]
        return Batch(rows[0][0], rows[-1][0], events)


def _scalar_transcoded_fields(cls: type) -> tuple[str, ...]:
    """Fields declared ``datetime``, ``Decimal`` or ``UUID`` (optionally ``| None``)."""
    import typing

    try:
        hints = typing.get_type_hints(cls)
    except Exception:
        return ()
    scalar = (datetime, Decimal, UUID)
    found = []
    for name, kind in hints.items():
        options = [a for a in typing.get_args(kind) if a is not type(None)] or [kind]
        if len(options) == 1 and options[0] in scalar:
            found.append(name)
    return tuple(found)


@dataclass(frozen=True, slots=True)
class RawEvent:
    """A stored event whose topic names no class here: its fields as a plain dict (with
    transcoded values such as datetimes left as ``{"_type_", "_data_"}``)."""

    originator_id: str
    originator_version: int
    topic: str
    data: dict[str, Any]


class _Unknown(Exception):
    """Raised when a transcoded value has a type this decoder does not know (use the mapper)."""


def decode_raw(row: Row) -> dict[str, Any]:
    """The stored state as a plain dict (for topics whose class may not exist here)."""
    data: dict[str, Any] = orjson.loads(row[4])
    return data
