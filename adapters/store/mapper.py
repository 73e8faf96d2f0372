"""Domain events <-> stored events: eventsourcing's Mapper, with its JSON format written by
orjson (see transcoder.py)."""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Mapper

from adapters.store.transcoder import OrjsonTranscoder


def make_mapper() -> Mapper[Any]:
    return Mapper(transcoder=OrjsonTranscoder())
