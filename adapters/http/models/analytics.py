"""Analytics answers."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel


class Window(BaseModel):
    since: datetime
    until: datetime


class Summary(BaseModel):
    """Counts across the network now, and activity in the window."""

    window: Window
    stations: int
    slots: dict[str, int]
    batteries: dict[str, int]
    sessions: int
    swaps: int
    refusals: int
    cancelled: int
    timed_out: int


class SohBucket(BaseModel):
    bucket: str
    batteries: int


class StationDay(BaseModel):
    station_id: str
    day: date
    sessions: int
    swaps: int
    refusals: int
    energy_ah: Decimal


class ReasonCount(BaseModel):
    reason: str
    count: int


class Utilisation(BaseModel):
    """Share of the window a station was serving a rider (busy seconds / window seconds)."""

    station_id: str
    busy_s: float
    utilisation: float
    sessions: int
    swaps: int
