"""The health log (readmodels/health.py): one row per ``Battery.HealthRecorded``, keyed by its
position in the event log, written as is (late readings included: this is history)."""

from __future__ import annotations

from typing import Any

from domain.battery import Battery
from projections.base import Projection, key_of
from projections.unitofwork import UnitOfWork


class HealthProjection(Projection):
    model = "health"
    handles = (Battery.HealthRecorded,)

    def apply(self, event: Any, uow: UnitOfWork, position: int) -> None:
        match event:
            case Battery.HealthRecorded():
                uow.insert(
                    "readings",
                    {
                        "event_id": position,
                        "battery_id": key_of(event.originator_id),
                        "measured_at": event.occurred_at,
                        "recorded_at": event.recorded_at,
                        "source": event.source,
                        "station_id": event.station_id,
                        "slot": event.slot,
                        "soc": event.soc,
                        "soh": event.soh,
                        "temperature": event.temperature,
                        "voltage": event.voltage,
                        "pack_voltage": event.pack_voltage,
                        "cell_voltage_min": event.cell_voltage_min,
                        "cell_voltage_max": event.cell_voltage_max,
                        "max_temp": event.max_temp,
                        "ambient_temp": event.ambient_temp,
                        "humidity": event.humidity,
                        "internal_resist": event.internal_resist,
                        "cycle_count": event.cycle_count,
                        "error_code": event.error_code,
                    },
                )
            case _:
                pass
