"""The append-only event store on MySQL/MariaDB and SQLite (see recorder.py)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from adapters.store.engine import create_engine
from adapters.store.mapper import make_mapper
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
    """An engine, the recorder on it and the mapper, opened together."""

    engine: Engine
    recorder: LedgerRecorder

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()


def open_store(url: str, *, init: bool = False) -> Store:
    """Open the store at ``url``; with ``init`` create or upgrade its schema first."""
    engine = create_engine(url)
    if init:
        from adapters.store.migrate import upgrade

        upgrade(engine)
    return Store(engine=engine, recorder=LedgerRecorder(engine))


mapper = make_mapper()
