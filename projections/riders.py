"""Riders and cards (readmodels/riders.py) from Rider and Card events.

A swap is counted when the rider receives a battery within a session (``BatteryReceived``
with a session id: only a completed swap issues one); its station is the station of the
rider's open session at that moment.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.card import Card
from domain.rider import ERASED, Rider
from projections.base import Projection, key_of
from projections.decode import Delivered
from projections.unitofwork import UnitOfWork


class RidersProjection(Projection):
    model = "riders"
    handles = (
        Rider.Registered,
        Rider.Updated,
        Rider.Suspended,
        Rider.Reactivated,
        Rider.Deactivated,
        Rider.Erased,
        Rider.BatteryReceived,
        Rider.BatteryReturned,
        Rider.SessionOpened,
        Rider.SessionClosed,
        Card.Issued,
        Card.Blocked,
        Card.Unblocked,
    )

    def prefetch(self, batch: list[Delivered]) -> dict[str, Iterable[Any]]:
        riders: list[str] = []
        cards: list[str] = []
        for d in batch:
            oid = d.event.originator_id
            (cards if oid.startswith("card:") else riders).append(key_of(oid))
        return {"riders": riders, "cards": cards}

    def apply(self, event: Any, uow: UnitOfWork, position: int) -> None:
        row: dict[str, Any] | None
        card: dict[str, Any] | None
        match event:
            case Rider.Registered():
                row = uow.new(
                    "riders",
                    rider_id=key_of(event.originator_id),
                    batteries=[],
                    swap_count=0,
                    status="active",
                    registered_at=event.occurred_at,
                )
                _describe(row, event)
                self._save(uow, row, event, position)
            case Rider.Updated():
                if (row := self._rider(uow, event)) is not None:
                    _describe(row, event)
                    self._save(uow, row, event, position)
            case Rider.Erased():
                if (row := self._rider(uow, event)) is not None:
                    row["personal"] = {**ERASED, "erased": True}
                    self._save(uow, row, event, position)
            case Rider.Suspended() | Rider.Reactivated() | Rider.Deactivated():
                if (row := self._rider(uow, event)) is not None:
                    row["status"] = _STATUS[type(event)]
                    row["status_reason"] = event.reason
                    self._save(uow, row, event, position)
            case Rider.BatteryReceived():
                if (row := self._rider(uow, event)) is not None:
                    _hold(row, sorted({*row["batteries"], event.battery_id}))
                    if event.session_id is not None:
                        row["swap_count"] += 1
                        row["last_swap_at"] = event.occurred_at
                        row["last_swap_session_id"] = event.session_id
                        row["last_swap_station_id"] = (
                            row["open_station_id"]
                            if row["open_session_id"] == event.session_id
                            else None
                        )
                    self._save(uow, row, event, position)
            case Rider.BatteryReturned():
                if (row := self._rider(uow, event)) is not None:
                    _hold(row, [b for b in row["batteries"] if b != event.battery_id])
                    self._save(uow, row, event, position)
            case Rider.SessionOpened():
                if (row := self._rider(uow, event)) is not None:
                    row["open_session_id"] = event.session_id
                    row["open_station_id"] = event.station_id
                    self._save(uow, row, event, position)
            case Rider.SessionClosed():
                row = self._rider(uow, event)
                if row is not None and row["open_session_id"] == event.session_id:
                    row["open_session_id"] = row["open_station_id"] = None
                    self._save(uow, row, event, position)
            case Card.Issued():
                card = uow.new(
                    "cards",
                    rfid_code=key_of(event.originator_id),
                    rider_id=event.rider_id,
                    status="active",
                    issued_at=event.occurred_at,
                    updated_at=event.occurred_at,
                    position=position,
                )
                uow.put("cards", card)
            case Card.Blocked() | Card.Unblocked():
                card = uow.get("cards", key_of(event.originator_id))
                if card is not None:
                    card["status"] = getattr(event, "status", "active")
                    card["reason"] = event.reason
                    card["updated_at"] = event.occurred_at
                    card["position"] = position
                    uow.put("cards", card)
            case _:
                pass

    @staticmethod
    def _rider(uow: UnitOfWork, event: Any) -> dict[str, Any] | None:
        return uow.get("riders", key_of(event.originator_id))

    @staticmethod
    def _save(uow: UnitOfWork, row: dict[str, Any], event: Any, position: int) -> None:
        row["updated_at"] = event.occurred_at
        row["position"] = position
        uow.put("riders", row)


_STATUS = {
    Rider.Suspended: "suspended",
    Rider.Reactivated: "active",
    Rider.Deactivated: "deactivated",
}


def _describe(row: dict[str, Any], event: Any) -> None:
    personal = event.personal  # opened by the store's mapper (ERASED once the key is gone)
    previous = row.get("personal")
    row["personal"] = dict(personal) if isinstance(personal, dict) else personal
    if isinstance(previous, dict) and previous.get("erased"):  # an update after the erasure
        row["personal"] = {**ERASED, "erased": True}
    row["vehicle"] = event.vehicle
    row["plan_id"] = event.plan_id
    row["role"] = event.role


def _hold(row: dict[str, Any], batteries: list[str]) -> None:
    row["batteries"] = batteries
    row["battery_id"] = batteries[0] if batteries else None
