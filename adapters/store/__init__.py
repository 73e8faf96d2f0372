"""The append-only event store on MySQL/MariaDB and SQLite (see recorder.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from adapters.store.engine import create_engine
from adapters.store.mapper import LedgerMapper, make_mapper
from adapters.store.personal import PersonalVault
from adapters.store.recorder import (
    AppendConflict,
    AppendRequest,
    AppendResult,
    CommandRecord,
    DuplicateCommand,
    LedgerRecorder,
)

__all__ = [
    "AppendConflict",
    "AppendRequest",
    "AppendResult",
    "CommandRecord",
    "DuplicateCommand",
    "LedgerRecorder",
    "Store",
    "open_store",
]


@dataclass
class Store:
    """An engine, the recorder on it and the mapper, opened together. ``mapper`` opens riders'
    sealed personal data with this store's keys: decode this store's events with it."""

    engine: Engine
    recorder: LedgerRecorder
    mapper: LedgerMapper

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, init: bool = False, secret: str | None = None) -> Store:
    """Open the store at ``url``; with ``init`` create or upgrade its schema first. ``secret``
    wraps riders' data keys (default: the SECRET_KEY setting)."""
    engine = create_engine(url)
    if init:
        from adapters.store.migrate import upgrade

        upgrade(engine)
    recorder = LedgerRecorder(engine)
    if secret is None:
        from ledger.settings import get_settings

        configured = get_settings().secret_key
        secret = configured.get_secret_value() if configured is not None else None
    vault = PersonalVault(recorder, secret)
    return Store(engine=engine, recorder=recorder, mapper=LedgerMapper(vault))


mapper = make_mapper()
"""A mapper without keys: for events that carry no sealed personal data (tests, tools)."""
