"""The projections' fast decoder returns exactly what the store's mapper returns."""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

import domain.handlers  # noqa: F401 - imports every aggregate module
from adapters.store import mapper
from domain.base import Aggregate, DomainEvent
from projections.decode import Decoder, Delivered, RawEvent

T = datetime(2025, 7, 14, 10, 30, 0, 123456, tzinfo=UTC)


def _event_classes() -> list[type[DomainEvent]]:
    found = []
    stack = list(Aggregate.__subclasses__())
    while stack:
        aggregate = stack.pop()
        stack.extend(aggregate.__subclasses__())
        for value in vars(aggregate).values():
            if isinstance(value, type) and issubclass(value, DomainEvent):
                found.append(value)
    return sorted(found, key=lambda c: c.__qualname__)


def _sample(kind: Any, name: str) -> Any:
    origin = typing.get_origin(kind)
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return _sample(args[0], name)
    if kind is str:
        return f"{name}-é"
    if kind is int:
        return 7
    if kind is float:
        return 81.5
    if kind is bool:
        return True
    if kind is Decimal:
        return Decimal("12.345")
    if kind is datetime:
        return T + timedelta(seconds=3)
    if origin is dict or kind is dict:
        return {"name": "Ines", "at": T, "amount": Decimal("1.50"), "nested": [1, {"x": None}]}
    if origin is list or kind is list:
        return [{"slot": 1, "battery_id": "3", "state": "ready"}, {"slot": 2}]
    if origin is tuple:
        return ["a", "b"]
    raise AssertionError(f"no sample for {name}: {kind}")


EVENT_CLASSES = _event_classes()


def test_every_aggregate_has_events() -> None:
    assert len(EVENT_CLASSES) > 40


@pytest.mark.parametrize("cls", EVENT_CLASSES, ids=lambda c: c.__qualname__)
def test_decoder_matches_the_mapper(cls: type[DomainEvent]) -> None:
    hints = typing.get_type_hints(cls)
    values = {
        f.name: _sample(hints[f.name], f.name)
        for f in dataclasses.fields(cls)
        if f.name not in ("originator_id", "originator_version", "occurred_at", "recorded_at")
    }
    event = cls(
        originator_id="x:12",
        originator_version=3,
        occurred_at=T.astimezone(timezone(timedelta(hours=2))),
        recorded_at=T,
        **values,
    )
    stored = mapper.to_stored_event(event)
    row = (99, str(stored.originator_id), stored.originator_version, stored.topic, stored.state, T)
    expected = mapper.to_domain_event(stored)
    got = Decoder().decode(row)
    assert type(got) is type(expected)
    assert got.__dict__ == expected.__dict__
    assert got == event


def test_unknown_topics_decode_raw_and_unwanted_rows_only_move_the_position() -> None:
    topic = "nowhere.module:Gone.Happened"
    rows = [(5, "thing:1", 1, topic, b'{"a":1}', T), (6, "thing:1", 2, "other:X", b"{}", T)]
    batch = Decoder().batch(rows, lambda t: t == topic)
    assert (batch.first, batch.last) == (5, 6)
    assert batch.events == [Delivered(5, RawEvent("thing:1", 1, topic, {"a": 1}), topic)]
    assert Decoder().batch(rows, lambda t: False).events == []
    assert batch.after(5).events == []
    assert batch.after(5).first == 6
