"""eventsourcing's infrastructure factory for this store (``PERSISTENCE_MODULE``).

With ``PERSISTENCE_MODULE=adapters.store.factory`` and ``BSS_DATABASE_URL`` set, the library's
own machinery (``Application``, ``ProjectionRunner``, ``EventSourcedProjectionRunner``) runs
on the ledger's store, on MySQL/MariaDB and SQLite alike: the recorder is the ledger's
``LedgerRecorder`` (serialised appends, polling subscription, locked tracking) and the mapper
is the store's (orjson, riders' sealed personal data). Tracking recorder classes given to it
must take the engine as their only argument (subclass ``LedgerRecorder``).
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    Mapper,
    ProcessRecorder,
    TrackingRecorder,
)
from eventsourcing.utils import Environment, EnvType

from adapters.store import Store, open_store
from adapters.store.recorder import LedgerRecorder


class LedgerFactory(InfrastructureFactory[TrackingRecorder]):
    """Builds the ledger's recorder and mapper for eventsourcing applications and runners."""

    DATABASE_URL = "BSS_DATABASE_URL"

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        url = self.env.get(self.DATABASE_URL) or self.env.get("SQLALCHEMY_URL")
        if not url:
            raise ValueError(f"{self.DATABASE_URL} is not set for {self.env.name or 'the app'}")
        self.store: Store = open_store(url)

    def mapper(self, transcoder: Any = None, mapper_class: Any = None) -> Mapper[Any]:
        return self.store.mapper

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        if purpose != "events":
            raise NotImplementedError("the ledger keeps no snapshots: aggregates are cached")
        return self.store.recorder

    def application_recorder(self) -> ApplicationRecorder:
        return self.store.recorder

    def tracking_recorder(self, tracking_recorder_class: Any = None) -> TrackingRecorder:
        if tracking_recorder_class is None or tracking_recorder_class is LedgerRecorder:
            return self.store.recorder
        recorder: TrackingRecorder = tracking_recorder_class(self.store.engine)
        return recorder

    def process_recorder(self) -> ProcessRecorder:
        return self.store.recorder

    def close(self) -> None:
        self.store.close()
