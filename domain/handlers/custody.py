"""Moves that keep the copies of custody in step: a battery's custody, the station's slots
and reservations, the rider's held batteries and open session. Each helper changes every
side in the same call, so the ledger appends them together."""

from __future__ import annotations

from domain.base import InvalidTransition, Repository, Stamp
from domain.battery import Battery
from domain.policy import PolicyValues
from domain.reasons import Reason
from domain.rider import Rider
from domain.session import SwapSession
from domain.station import Station


def free(repo: Repository, battery: Battery, at: Stamp, cause: str) -> None:
    """Drop a battery's reservation on both the battery and its station."""
    if battery.reserved_for is None:
        return
    station_id = battery.custody.get("station_id")
    station = repo.get(Station, station_id) if station_id else None
    if station is not None:
        station.release(at, battery.key, cause)
    battery.release(at, cause)


def unslot(repo: Repository, battery: Battery, at: Stamp, cause: str) -> None:
    """Empty the slot a battery sits in (if it sits in one), freeing its reservation."""
    free(repo, battery, at, cause)
    if battery.custody["kind"] == "slot":
        station = repo.get(Station, battery.custody["station_id"])
        if station is not None and station.slot_of(battery.key) is not None:
            station.empty_slot(at, battery.key, cause)


def not_with_rider(battery: Battery, action: str) -> None:
    if battery.holder is not None:
        raise InvalidTransition(
            f"battery {battery.key} is held by rider {battery.holder}; cannot {action}",
            battery_id=battery.key,
            rider_id=battery.holder,
        )


def issue(
    station: Station,
    battery: Battery,
    rider: Rider,
    session_id: str,
    at: Stamp,
    soc: float | None,
    policy_version: int,
) -> int:
    """Rule 14: slot → rider. Returns the slot the battery left."""
    battery.release(at, "issued")
    slot = station.empty_slot(at, battery.key, "issued")
    battery.trigger(
        Battery.Issued,
        at,
        rider_id=rider.key,
        session_id=session_id,
        station_id=station.key,
        slot=slot,
        soc=soc,
        policy_version=policy_version,
    )
    rider.receive(at, battery.key, session_id)
    return slot


def take_back(
    station: Station,
    battery: Battery,
    rider: Rider,
    session_id: str,
    slot: int,
    at: Stamp,
    soc: float | None,
    policy_version: int,
) -> None:
    """Rule 14: rider → slot."""
    station.fill_slot(at, slot, battery.key, "returned")
    battery.trigger(
        Battery.Returned,
        at,
        rider_id=rider.key,
        session_id=session_id,
        station_id=station.key,
        slot=slot,
        soc=soc,
        policy_version=policy_version,
    )
    rider.give_back(at, battery.key, session_id)


def end_session(repo: Repository, session: SwapSession, at: Stamp) -> None:
    """After a session's closing event: free its reservation, forget it on station and rider."""
    if session.picked_battery_id is not None:
        battery = repo.get(Battery, session.picked_battery_id)
        if battery is not None and battery.reserved_for == session.key:
            free(repo, battery, at, session.status)
    station = repo.get(Station, session.station_id)
    if station is not None:
        station.close_session(at, session.key, session.status)
    rider = repo.get(Rider, session.rider_id) if session.rider_id else None
    if rider is not None:
        rider.close(at, session.key, session.status)


def time_out(
    repo: Repository, session: SwapSession, at: Stamp, policy: PolicyValues, version: int
) -> None:
    """Rule 15: close as timed_out and free the reserved battery."""
    session.trigger(
        SwapSession.TimedOut,
        at,
        reason=Reason.SESSION_TIMED_OUT.value,
        timeout_s=policy.session_timeout_s,
        policy_version=version,
    )
    end_session(repo, session, at)


def cancel(
    repo: Repository, session: SwapSession, at: Stamp, superseded_by: str | None, version: int
) -> None:
    """Rule 6: an open session elsewhere is closed as cancelled."""
    session.trigger(
        SwapSession.Cancelled,
        at,
        reason="superseded",
        superseded_by=superseded_by,
        policy_version=version,
    )
    end_session(repo, session, at)


def return_slot(station: Station, preferred: int | None, leaving: int | None) -> int | None:
    """Where a returned battery goes: the slot the station named (if empty), else the lowest
    empty slot, else the slot the issued battery leaves (None: nowhere)."""
    empty = station.empty_slots()
    if preferred is not None and (preferred in empty or preferred == leaving):
        return preferred
    if empty:
        return empty[0]
    return leaving
