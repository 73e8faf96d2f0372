"""Batteries and their health readings."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters.http.models.common import StrictModel

BatteryStatus = Literal[
    "docked", "reserved", "in_use", "warehouse", "repair", "quarantined", "retired"
]
CustodyKind = Literal["slot", "rider", "warehouse", "repair", "retired"]
Grade = Literal["ok", "quarantined", "retired"]


class BatteryCreate(StrictModel):
    """A new battery: docked in ``slot`` at ``station_id`` when both are given, else in the
    warehouse. ``id`` and ``serial_number`` name the same thing (the ledger keys batteries by
    serial); give either, or both equal."""

    id: str | None = Field(default=None, min_length=1, max_length=64, examples=["B-0001"])
    serial_number: str | None = Field(default=None, min_length=1, max_length=64)
    capacity_ah: Decimal = Field(gt=0, le=100000, max_digits=12, decimal_places=3, examples=["30"])
    battery_type: str = Field(default="standard", min_length=1, max_length=64)
    manufactured_on: date | None = Field(
        default=None, description="Defaults to today (UTC) when not given."
    )
    station_id: str | None = Field(default=None, min_length=1, max_length=64)
    slot: int | None = Field(default=None, ge=1, le=1000)
    soc: float | None = Field(default=None, ge=0, le=100)
    soh: float | None = Field(default=None, ge=0, le=100)

    @model_validator(mode="after")
    def _one_identity(self) -> BatteryCreate:
        if self.id is None and self.serial_number is None:
            raise ValueError("id or serial_number is required")
        if self.id and self.serial_number and self.id != self.serial_number:
            raise ValueError("id and serial_number must be equal (batteries are keyed by serial)")
        if (self.station_id is None) != (self.slot is None):
            raise ValueError("station_id and slot go together")
        return self

    @property
    def battery_id(self) -> str:
        found = self.id or self.serial_number
        assert found is not None
        return found


class BatteryUpdate(StrictModel):
    """Fields given replace the current ones. ``grade`` quarantines (``quarantined``) or
    reinstates (``ok``) a battery; ``reason`` explains it."""

    battery_type: str | None = Field(default=None, min_length=1, max_length=64)
    capacity_ah: Decimal | None = Field(
        default=None, gt=0, le=100000, max_digits=12, decimal_places=3
    )
    manufactured_on: date | None = None
    grade: Literal["ok", "quarantined"] | None = None
    reason: str | None = Field(default=None, min_length=1, max_length=200)


class BatteryAction(StrictModel):
    """Why (kept on the event)."""

    reason: str = Field(min_length=1, max_length=200, examples=["cell imbalance"])


class BatteryDock(StrictModel):
    """Put a battery in a slot outside a swap (restocking, back from repair)."""

    station_id: str = Field(min_length=1, max_length=64)
    slot: int = Field(ge=1, le=1000)


class BatteryPublic(BaseModel):
    """A battery now: custody, grade, status and its latest reading."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(validation_alias="battery_id")
    battery_type: str
    capacity_ah: Decimal
    manufactured_on: str | None = None
    custody: dict[str, Any]
    custody_kind: str
    station_id: str | None = None
    slot: int | None = None
    rider_id: str | None = None
    grade: str
    status: str
    reserved_for: str | None = None
    soc: float | None = None
    soh: float | None = None
    temperature: float | None = None
    voltage: float | None = None
    cycle_count: int | None = None
    error_code: str | None = None
    reading_at: datetime | None = None
    last_seen_at: datetime | None = None
    registered_at: datetime | None = None
    position: int


class HealthLogPublic(BaseModel):
    """One health reading of a battery."""

    model_config = ConfigDict(extra="ignore")

    event_id: int = Field(description="Ledger position of the reading's event.")
    battery_id: str
    measured_at: datetime
    recorded_at: datetime
    source: str
    station_id: str | None = None
    slot: int | None = None
    soc: float | None = None
    soh: float | None = None
    temperature: float | None = None
    voltage: float | None = None
    pack_voltage: float | None = None
    cell_voltage_min: float | None = None
    cell_voltage_max: float | None = None
    max_temp: float | None = None
    ambient_temp: float | None = None
    humidity: float | None = None
    internal_resist: float | None = None
    cycle_count: int | None = None
    error_code: str | None = None
