"""Swap sessions (readmodels/swaps.py): one row per session, from SwapSession events."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from domain.session import SwapSession
from projections.base import Projection, key_of
from projections.decode import Delivered
from projections.unitofwork import Row, UnitOfWork

log = logging.getLogger(__name__)

S = SwapSession


class SwapsProjection(Projection):
    model = "swaps"
    handles = (
        S.CardAuthorized,
        S.AuthDenied,
        S.ReturnAccepted,
        S.ReturnedBatteryRefused,
        S.BatteryPicked,
        S.IssueRefused,
        S.PickRefused,
        S.Completed,
        S.StationRefused,
        S.Cancelled,
        S.TimedOut,
        S.Corrected,
    )

    def prefetch(self, batch: list[Delivered]) -> dict[str, Iterable[Any]]:
        return {"swaps": [key_of(d.event.originator_id) for d in batch]}

    def apply(self, event: Any, uow: UnitOfWork, position: int) -> None:
        session_id = key_of(event.originator_id)
        if isinstance(event, S.CardAuthorized | S.AuthDenied):
            row = uow.new(
                "swaps",
                session_id=session_id,
                station_id=event.station_id,
                rider_id=event.rider_id,
                rfid_code=event.rfid_code,
                opened_at=event.occurred_at,
                taken_back=False,
                corrections=[],
                correction_count=0,
            )
        else:
            found = uow.get("swaps", session_id)
            if found is None:
                log.warning("swaps: %s for unknown session %s", type(event).__name__, session_id)
                return
            row = found
        match event:
            case S.CardAuthorized():
                row["state"] = "authenticated"
            case S.AuthDenied():
                _finish(row, event, "refused", event.reason)
            case S.ReturnAccepted():
                row["state"] = "pending_collection"
                row["initiated_at"] = event.occurred_at
                _returned(
                    row, event.battery_id, event.soc, event.soh, event.temperature, event.voltage
                )
            case S.ReturnedBatteryRefused():
                _returned(
                    row, event.battery_id, event.soc, event.soh, event.temperature, event.voltage
                )
                row["initiated_at"] = event.occurred_at
                row["taken_back"] = event.taken_back
                row["returned_slot"] = event.slot
                row["energy_used_ah"] = event.energy_used_ah
                _finish(row, event, "refused", event.reason)
            case S.BatteryPicked():
                row["picked_battery_id"], row["picked_slot"] = event.battery_id, event.slot
            case S.IssueRefused():
                row["reason"] = event.reason
            case S.PickRefused():
                _finish(row, event, "refused", event.reason)
            case S.Completed():
                row["returned_battery_id"] = event.returned_battery_id
                row["returned_slot"] = event.returned_slot
                if event.returned_soc is not None or row["returned_soc"] is None:
                    row["returned_soc"], row["returned_soh"] = (
                        event.returned_soc,
                        event.returned_soh,
                    )
                row["returned_issue_soc"] = event.returned_issue_soc
                row["capacity_ah"] = event.capacity_ah
                row["issued_battery_id"], row["issued_slot"] = (
                    event.issued_battery_id,
                    event.issued_slot,
                )
                row["issued_soc"], row["issued_soh"] = event.issued_soc, event.issued_soh
                row["energy_used_ah"] = event.energy_used_ah
                _finish(row, event, "complete", None)
            case S.StationRefused():
                _returned(row, event.battery_id, event.soc, event.soh, event.temperature, None)
                row["station_reason"] = event.station_reason
                _finish(row, event, "refused", event.reason)
            case S.Cancelled():
                row["superseded_by"] = event.superseded_by
                _finish(row, event, "cancelled", event.reason)
            case S.TimedOut():
                _finish(row, event, "timed_out", event.reason)
            case S.Corrected():
                row["returned_issue_soc"] = event.returned_issue_soc
                row["returned_soc"] = event.returned_soc
                row["energy_used_ah"] = event.energy_used_ah
                row["corrections"] = [
                    *row["corrections"],
                    {
                        "version": event.originator_version,
                        "original_version": event.original_version,
                        "delta_ah": str(event.delta_ah),
                        "note": event.note,
                        "at": event.occurred_at.isoformat(),
                    },
                ]
                row["correction_count"] = len(row["corrections"])
            case _:
                return
        row["policy_version"] = event.policy_version
        row["updated_at"] = event.occurred_at
        row["position"] = position
        uow.put("swaps", row)


def _returned(
    row: Row,
    battery_id: str | None,
    soc: float | None,
    soh: float | None,
    temperature: float | None,
    voltage: float | None,
) -> None:
    row["returned_battery_id"] = battery_id
    row["returned_soc"], row["returned_soh"] = soc, soh
    row["returned_temperature"], row["returned_voltage"] = temperature, voltage


def _finish(row: Row, event: Any, state: str, reason: str | None) -> None:
    row["state"] = state
    row["outcome"] = "completed" if state == "complete" else state
    row["reason"] = reason
    row["closed_at"] = event.occurred_at
    row["duration_s"] = max(0.0, (event.occurred_at - row["opened_at"]).total_seconds())
