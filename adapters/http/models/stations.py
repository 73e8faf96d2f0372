"""Stations and slots."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from adapters.http.models.common import StrictModel

StationStatus = Literal["online", "offline", "maintenance"]


class StationCreate(StrictModel):
    """A new station: id as stations use it in their MQTT topics (``bss/{id}/...``)."""

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", examples=["1"])
    name: str = Field(min_length=1, max_length=200, examples=["Central"])
    location: str = Field(default="", max_length=200, examples=["Main street 1"])
    slots: int = Field(ge=1, le=1000, examples=[8])
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)


class StationUpdate(StrictModel):
    """Fields given replace the current ones; ``status`` sets the status as an admin."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    location: str | None = Field(default=None, max_length=200)
    slots: int | None = Field(default=None, ge=1, le=1000)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lng: float | None = Field(default=None, ge=-180, le=180)
    status: StationStatus | None = None


class SlotPublic(BaseModel):
    """One slot: the battery in it and whether it may be issued now."""

    model_config = ConfigDict(extra="ignore")

    slot: int
    battery_id: str | None = None
    state: str
    state_source: str | None = None
    soc: float | None = None
    soh: float | None = None
    temperature: float | None = None
    grade: str | None = None
    reserved_for: str | None = None
    issuable: bool = False
    updated_at: datetime | None = None


class StationPublic(BaseModel):
    """A station now (from the stations read model)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(validation_alias="station_id")
    name: str
    location: str | None = None
    lat: float | None = None
    lng: float | None = None
    slot_count: int
    status: str
    status_source: str | None = None
    status_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    slots_ready: int = 0
    slots_charging: int = 0
    slots_empty: int = 0
    slots_faulty: int = 0
    batteries_docked: int = 0
    batteries_available: int = 0
    open_sessions: Any = None
    mismatches: Any = None
    registered_at: datetime | None = None
    updated_at: datetime | None = None
    position: int = Field(description="Ledger position of the last event applied to this row.")


class StationDetail(StationPublic):
    """A station with its slots."""

    slots: list[SlotPublic] = []
