"""Stations and slots (readmodels/stations.py): live inventory, status, last heartbeat.

A heartbeat (``StatusRecorded``) that is not older than the status in force sets the
station's status and the states of the slots it reports (until the slot's battery changes
or the next heartbeat); the slot counts of a station are recounted once per batch from its
slots.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain.station import Station
from projections import inventory
from projections.base import Projection, key_of, later
from projections.inventory import Inventory
from projections.unitofwork import Row, UnitOfWork


class StationsProjection(Projection):
    model = "stations"
    handles = (
        *inventory.HANDLES,
        Station.StatusRecorded,
        Station.SessionOpened,
        Station.SessionClosed,
    )
    preload = ("stations", *inventory.TABLES)

    def __init__(self) -> None:
        super().__init__()
        self.inventory = Inventory(self._slot_changed)
        self.recount: set[str] = set()

    def begin(self, uow: UnitOfWork) -> None:
        super().begin(uow)
        self.recount = set()

    def apply(self, event: Any, uow: UnitOfWork, position: int) -> None:
        row: Row | None
        match event:
            case Station.Registered():
                row = uow.new(
                    "stations",
                    station_id=key_of(event.originator_id),
                    status="online",
                    open_sessions=[],
                    registered_at=event.occurred_at,
                    **dict.fromkeys(_COUNTS, 0),
                )
                _describe(row, event)
                self._save(uow, row, event, position)
                self.inventory.apply(event, uow)
            case Station.Updated():
                if (row := self._station(uow, event)) is not None:
                    _describe(row, event)
                    self._save(uow, row, event, position)
                self.inventory.apply(event, uow)
            case Station.StatusRecorded():
                if (row := self._station(uow, event)) is not None:
                    self._status(uow, row, event)
                    self._save(uow, row, event, position)
            case Station.SessionOpened():
                if (row := self._station(uow, event)) is not None:
                    row["open_sessions"] = sorted({*row["open_sessions"], event.session_id})
                    self._save(uow, row, event, position)
            case Station.SessionClosed():
                if (row := self._station(uow, event)) is not None:
                    row["open_sessions"] = [
                        s for s in row["open_sessions"] if s != event.session_id
                    ]
                    self._save(uow, row, event, position)
            case _:
                self.inventory.apply(event, uow)

    def _status(self, uow: UnitOfWork, row: Row, event: Any) -> None:
        at: datetime = event.occurred_at
        if event.source == "heartbeat":
            row["last_heartbeat_at"] = later(row["last_heartbeat_at"], at)
        if row["status_at"] is not None and at < row["status_at"]:
            return  # a late heartbeat: history only
        row["status"], row["status_source"], row["status_at"] = event.status, event.source, at
        row["mismatches"] = list(event.mismatches)
        for report in event.slots:
            key = (row["station_id"], int(report["slot"]))
            self.inventory.refresh(uow, key, at, reported_state=report.get("state"), reported_at=at)

    def end(self, uow: UnitOfWork) -> None:
        for station_id in sorted(self.recount):
            row = uow.get("stations", station_id)
            if row is None:
                continue
            counts = dict.fromkeys(_COUNTS, 0)
            for number in range(1, int(row["slot_count"]) + 1):
                slot = uow.get("slots", (station_id, number))
                if slot is None:
                    continue
                counts[f"slots_{slot['state']}"] = counts.get(f"slots_{slot['state']}", 0) + 1
                counts["batteries_docked"] += slot["battery_id"] is not None
                counts["batteries_available"] += bool(slot["issuable"])
            changed = {k: v for k, v in counts.items() if k in _COUNTS and row[k] != v}
            if changed:
                row.update(changed)
                uow.put("stations", row)

    def _slot_changed(
        self, uow: UnitOfWork, old: Row | None, new: Row | None, at: datetime
    ) -> None:
        slot = new if new is not None else old
        assert slot is not None
        self.recount.add(slot["station_id"])

    @staticmethod
    def _station(uow: UnitOfWork, event: Any) -> Row | None:
        return uow.get("stations", key_of(event.originator_id))

    @staticmethod
    def _save(uow: UnitOfWork, row: Row, event: Any, position: int) -> None:
        row["updated_at"] = event.occurred_at
        row["position"] = position
        uow.put("stations", row)


_COUNTS = (
    "slots_ready",
    "slots_charging",
    "slots_empty",
    "slots_faulty",
    "batteries_docked",
    "batteries_available",
)


def _describe(row: Row, event: Any) -> None:
    row["name"], row["location"] = event.name, event.location
    row["lat"], row["lng"] = event.lat, event.lng
    row["slot_count"] = event.slot_count
