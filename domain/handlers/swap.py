"""The swap itself: returned battery checked (rules 7-10), battery to issue picked or
validated (11-13), custody moved (14), timeouts (15), energy posted (16).

Custody moves only at completion, for both batteries together; initiate checks and (v2)
reserves. A session is found by its id, or as the rider's open session at this station.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain import rules
from domain import validation as v
from domain.base import InvalidCommand, InvalidTransition, Outcome, Repository, Stamp
from domain.battery import Battery
from domain.commands import CompleteSwap, InitiateSwap, StationRefusedSwap, TimeOutSessions
from domain.handlers.auth import docked_batteries
from domain.handlers.billing import post_usage
from domain.handlers.custody import end_session, free, issue, return_slot, take_back, time_out
from domain.handlers.registry import existing, handles, stamp
from domain.policy import PolicyValues, current_policy
from domain.reasons import Reason
from domain.rider import Rider
from domain.session import SwapSession
from domain.station import Station


@dataclass(frozen=True)
class Context:
    """What every swap step needs: where, when, and under which policy."""

    repo: Repository
    station: Station
    at: Stamp
    policy: PolicyValues
    version: int


def _context(cmd: Any, repo: Repository, recorded_at: datetime) -> Context:
    station = existing(repo, Station, v.text("station_id", cmd.station_id), "station_id")
    policy, version = current_policy(repo)
    return Context(repo, station, stamp(cmd, recorded_at), policy, version)


def _locate(ctx: Context, session_id: str | None, rider_id: str | None) -> SwapSession | Outcome:
    """The open session named by id, or the rider's open session at this station. Refused
    session_unknown / session_timed_out otherwise; an expired session is timed out now."""
    if session_id is None and rider_id is None:
        raise InvalidCommand("session_id", "session_id or rider_id is required")
    if session_id is None:
        rider = ctx.repo.get(Rider, v.text("rider_id", rider_id))
        opened = rider.open_session if rider is not None else None
        if opened is not None and opened["station_id"] == ctx.station.key:
            session_id = opened["session_id"]
    session = ctx.repo.get(SwapSession, v.text("session_id", session_id)) if session_id else None
    known = session is not None and session.station_id == ctx.station.key
    if session is None or not known or (rider_id is not None and session.rider_id != rider_id):
        return Outcome.refused(Reason.SESSION_UNKNOWN, session_id=session_id)
    if session.status == "timed_out":
        return Outcome.refused(Reason.SESSION_TIMED_OUT, session_id=session.key)
    if not session.is_open:
        return Outcome.refused(Reason.SESSION_UNKNOWN, session_id=session.key)
    if session.expired(ctx.at.occurred_at, ctx.policy.session_timeout_s):
        time_out(ctx.repo, session, ctx.at, ctx.policy, ctx.version)
        return Outcome.refused(Reason.SESSION_TIMED_OUT, session_id=session.key)
    return session


@dataclass(frozen=True)
class Reading:
    soc: float | None
    soh: float | None
    temperature: float | None = None
    voltage: float | None = None

    def fields(self) -> dict[str, Any]:
        return {
            "soc": self.soc,
            "soh": self.soh,
            "temperature": self.temperature,
            "voltage": self.voltage,
        }

    def record(self, ctx: Context, battery: Battery, source: str, slot: int | None) -> None:
        if any(value is not None for value in self.fields().values()):
            battery.record_health(
                ctx.at, source, station_id=ctx.station.key, slot=slot, **self.fields()
            )


def _refuse_return(
    ctx: Context,
    session: SwapSession,
    battery_id: str,
    reading: Reading,
    slot_in: int | None,
    custody_only: bool = False,
) -> Outcome | None:
    """Rules 7-10 for the returned battery. On a refusal the session ends refused; under the
    retirement SOH (rule 10) the battery is taken back into a slot, quarantined, and the
    rider's usage of it is billed. Without a SOH on the message the latest known one counts;
    an unknown SOH or temperature cannot break rules 8-10. ``custody_only`` re-checks rule 7
    alone (at completion, after initiate already checked the rest)."""
    battery = ctx.repo.get(Battery, battery_id)
    soh = reading.soh if reading.soh is not None or battery is None else battery.soh
    soh = None if custody_only else soh
    rider_id = session.rider_id or ""
    reason = rules.return_refusal(
        battery, rider_id, 100 if soh is None else soh, reading.temperature, ctx.policy
    )
    if reason is None:
        return None
    slot, energy = None, Decimal("0.000")
    if battery is not None and reason is not Reason.BATTERY_NOT_HELD:
        reading.record(ctx, battery, "return", None)
        if soh is not None and rules.must_take_back(soh, ctx.policy):
            slot, energy = _take_back_retiring(ctx, session, battery, reading.soc, slot_in)
    session.trigger(
        SwapSession.ReturnedBatteryRefused,
        ctx.at,
        battery_id=battery_id,
        **reading.fields(),
        reason=reason.value,
        taken_back=slot is not None,
        slot=slot,
        energy_used_ah=energy,
        policy_version=ctx.version,
    )
    end_session(ctx.repo, session, ctx.at)
    if slot is not None:
        post_usage(ctx.repo, rider_id, session.key, energy, "take_back", ctx.at.occurred_at, ctx.at)
    return Outcome.refused(reason, session_id=session.key, taken_back=slot is not None, slot=slot)


def _take_back_retiring(
    ctx: Context, session: SwapSession, battery: Battery, soc: float | None, slot_in: int | None
) -> tuple[int | None, Decimal]:
    """Rule 10: quarantine, and take back into a slot when one is free (else it stays with
    the rider, quarantined, until a slot is free at a later return)."""
    slot = return_slot(ctx.station, slot_in, None)
    energy = Decimal("0.000")
    if slot is not None:
        rider = existing(ctx.repo, Rider, session.rider_id or "", "rider_id")
        soc = battery.soc if soc is None else soc
        energy = rules.energy_used(battery.issued_soc, soc, battery.capacity_ah)
        take_back(ctx.station, battery, rider, session.key, slot, ctx.at, soc, ctx.version)
    if battery.grade == "ok":
        free(ctx.repo, battery, ctx.at, "quarantined")
        battery.trigger(
            Battery.Quarantined, ctx.at, reason="below_retire_soh", policy_version=ctx.version
        )
    return slot, energy


def _accept_return(ctx: Context, session: SwapSession, battery_id: str, reading: Reading) -> None:
    battery = existing(ctx.repo, Battery, battery_id, "battery_in_id")
    reading.record(ctx, battery, "return", None)
    session.trigger(
        SwapSession.ReturnAccepted,
        ctx.at,
        battery_id=battery_id,
        soc=battery.soc if reading.soc is None else reading.soc,
        soh=battery.soh if reading.soh is None else reading.soh,
        temperature=reading.temperature,
        voltage=reading.voltage,
        policy_version=ctx.version,
    )


def _pick_and_reserve(ctx: Context, session: SwapSession) -> Outcome:
    """v2: rule 13 picks; the battery is reserved on the station and the battery."""
    choice = rules.pick(
        docked_batteries(ctx.repo, ctx.station), ctx.station.key, session.key, ctx.policy
    )
    if choice is None:
        session.trigger(
            SwapSession.PickRefused,
            ctx.at,
            reason=Reason.NO_BATTERY_AVAILABLE.value,
            policy_version=ctx.version,
        )
        end_session(ctx.repo, session, ctx.at)
        return Outcome.refused(Reason.NO_BATTERY_AVAILABLE, session_id=session.key)
    slot = choice.docked_at(ctx.station.key) or 0
    session.trigger(
        SwapSession.BatteryPicked,
        ctx.at,
        battery_id=choice.key,
        slot=slot,
        soc=choice.soc,
        soh=choice.soh,
        policy_version=ctx.version,
    )
    ctx.station.reserve(ctx.at, choice.key, session.key, ctx.version)
    choice.trigger(
        Battery.Reserved,
        ctx.at,
        session_id=session.key,
        station_id=ctx.station.key,
        policy_version=ctx.version,
    )
    return _decision(session)


def _decision(session: SwapSession) -> Outcome:
    return Outcome.accepted(
        session_id=session.key,
        rider_id=session.rider_id,
        battery_out_id=session.picked_battery_id,
        slot_out=session.picked_slot,
    )


@handles(InitiateSwap)
def initiate_swap(cmd: InitiateSwap, repo: Repository, recorded_at: datetime) -> Outcome:
    """The returned battery is at the station: rules 7-10, then (v2) pick and reserve."""
    ctx = _context(cmd, repo, recorded_at)
    battery_id = v.text("battery_in_id", cmd.battery_in_id)
    reading = Reading(
        v.required_percent("soc", cmd.soc),
        v.required_percent("soh", cmd.soh),
        v.optional_number("temperature", cmd.temperature, -40, 150),
        v.optional_number("voltage", cmd.voltage, 0),
    )
    slot_in = (
        None if cmd.slot_in is None else v.slot("slot_in", cmd.slot_in, ctx.station.slot_count)
    )
    located = _locate(ctx, cmd.session_id, cmd.rider_id)
    if isinstance(located, Outcome):
        return located
    session = located
    if session.status == "pending_collection":  # initiate sent again: same decision
        if session.returned_battery_id != battery_id:
            raise InvalidTransition(
                "a returned battery was already accepted for this session", session_id=session.key
            )
        return _decision(session)
    refused = _refuse_return(ctx, session, battery_id, reading, slot_in)
    if refused is not None:
        return refused
    _accept_return(ctx, session, battery_id, reading)
    return _pick_and_reserve(ctx, session) if cmd.pick_battery else _decision(session)


@handles(CompleteSwap)
def complete_swap(cmd: CompleteSwap, repo: Repository, recorded_at: datetime) -> Outcome:
    """The station swapped: re-check the return (rules 7-10 if no initiate came, else rule 7),
    validate the issued battery (11, 12, 14; refused → IssueRefused, nothing completed), then
    move both custodies, close the session and bill the energy."""
    ctx = _context(cmd, repo, recorded_at)
    in_id = v.text("battery_in_id", cmd.battery_in_id)
    out_id = v.optional_text("battery_out_id", cmd.battery_out_id)
    in_reading = Reading(v.percent("in_soc", cmd.in_soc), v.percent("in_soh", cmd.in_soh))
    out_reading = Reading(v.percent("out_soc", cmd.out_soc), v.percent("out_soh", cmd.out_soh))
    slot_in = (
        None if cmd.slot_in is None else v.slot("slot_in", cmd.slot_in, ctx.station.slot_count)
    )
    located = _locate(ctx, cmd.session_id, cmd.rider_id)
    if isinstance(located, Outcome):
        return located
    session = located
    out_id = out_id or session.picked_battery_id
    if out_id is None:
        raise InvalidCommand("battery_out_id", "is required (the ledger picked no battery)")
    if out_id == in_id:
        raise InvalidCommand("battery_out_id", "must differ from battery_in_id")
    initiated = session.status == "pending_collection"
    if initiated and session.returned_battery_id != in_id:
        raise InvalidCommand("battery_in_id", "is not the battery accepted at initiate")
    refused = _refuse_return(ctx, session, in_id, in_reading, slot_in, custody_only=initiated)
    if refused is not None:
        return refused
    if initiated:
        in_reading.record(ctx, existing(repo, Battery, in_id, "battery_in_id"), "return", None)
    else:
        _accept_return(ctx, session, in_id, in_reading)
    out = repo.get(Battery, out_id)
    reason = rules.issue_refusal(
        out,
        ctx.station.key,
        session.key,
        ctx.policy,
        out_reading.soc,
        out_reading.soh,
        # a v1 station picked without reporting the SOC: it has watched the battery charge
        assume_charging=cmd.battery_out_id is not None,
    )
    if reason is not None or out is None:
        reason = reason or Reason.BATTERY_UNAVAILABLE
        session.trigger(
            SwapSession.IssueRefused,
            ctx.at,
            battery_id=out_id,
            reason=reason.value,
            policy_version=ctx.version,
        )
        return Outcome.refused(reason, session_id=session.key, battery_out_id=out_id)
    return _complete(ctx, session, in_id, in_reading, out, out_reading, slot_in)


def _first(*values: Any) -> Any:
    return next((value for value in values if value is not None), None)


def _complete(
    ctx: Context,
    session: SwapSession,
    in_id: str,
    in_reading: Reading,
    out: Battery,
    out_reading: Reading,
    slot_in: int | None,
) -> Outcome:
    """Move both custodies, close the session, bill the energy. The returned SOC is the
    completion's own, else the one accepted at initiate, else the battery's latest."""
    rider = existing(ctx.repo, Rider, session.rider_id or "", "rider_id")
    returned = existing(ctx.repo, Battery, in_id, "battery_in_id")
    accepted = session.returned_reading or {}
    returned_soc = _first(in_reading.soc, accepted.get("soc"), returned.soc)
    returned_soh = _first(in_reading.soh, accepted.get("soh"), returned.soh)
    leaving = out.docked_at(ctx.station.key)
    out_reading.record(ctx, out, "issue", leaving)
    out_soc = _first(out_reading.soc, out.soc)
    energy = rules.energy_used(returned.issued_soc, returned_soc, returned.capacity_ah)
    issue_soc = returned.issued_soc
    if session.picked_battery_id not in (None, out.key):
        picked = ctx.repo.get(Battery, session.picked_battery_id or "")
        if picked is not None and picked.reserved_for == session.key:
            free(ctx.repo, picked, ctx.at, "not_taken")
    slot = return_slot(ctx.station, slot_in, leaving)
    assert slot is not None
    slot_out = issue(ctx.station, out, rider, session.key, ctx.at, out_soc, ctx.version)
    take_back(ctx.station, returned, rider, session.key, slot, ctx.at, returned_soc, ctx.version)
    session.trigger(
        SwapSession.Completed,
        ctx.at,
        returned_battery_id=in_id,
        returned_slot=slot,
        returned_soc=returned_soc,
        returned_soh=returned_soh,
        returned_issue_soc=issue_soc,
        capacity_ah=returned.capacity_ah,
        issued_battery_id=out.key,
        issued_slot=slot_out,
        issued_soc=out_soc,
        issued_soh=_first(out_reading.soh, out.soh),
        energy_used_ah=energy,
        policy_version=ctx.version,
    )
    end_session(ctx.repo, session, ctx.at)
    post_usage(ctx.repo, rider.key, session.key, energy, "swap", ctx.at.occurred_at, ctx.at)
    return Outcome.accepted(
        swap_id=session.key,
        session_id=session.key,
        rider_id=rider.key,
        battery_in_id=in_id,
        battery_out_id=out.key,
        slot_in=slot,
        slot_out=slot_out,
        energy_used_ah=str(energy),
    )


@handles(StationRefusedSwap)
def station_refused_swap(
    cmd: StationRefusedSwap, repo: Repository, recorded_at: datetime
) -> Outcome:
    """The station refused the returned battery itself: recorded, session closed refused.
    The Outcome is accepted (the ledger recorded it); the session's reason is station_refused."""
    ctx = _context(cmd, repo, recorded_at)
    battery_id = v.optional_text("battery_id", cmd.battery_id)
    reading = Reading(
        v.percent("soc", cmd.soc),
        v.percent("soh", cmd.soh),
        v.optional_number("temperature", cmd.temperature, -40, 150),
    )
    station_reason = v.optional_text("station_reason", cmd.station_reason)
    located = _locate(ctx, cmd.session_id, cmd.rider_id)
    if isinstance(located, Outcome):
        return located
    battery = repo.get(Battery, battery_id) if battery_id else None
    if battery is not None:
        reading.record(ctx, battery, "station_refused", None)
    located.trigger(
        SwapSession.StationRefused,
        ctx.at,
        battery_id=battery_id,
        station_reason=station_reason,
        soc=reading.soc,
        soh=reading.soh,
        temperature=reading.temperature,
        reason=Reason.STATION_REFUSED.value,
        policy_version=ctx.version,
    )
    end_session(repo, located, ctx.at)
    return Outcome.accepted(
        session_id=located.key, status=located.status, reason=Reason.STATION_REFUSED.value
    )


@handles(TimeOutSessions)
def time_out_sessions(cmd: TimeOutSessions, repo: Repository, recorded_at: datetime) -> Outcome:
    """Rule 15, run by the ledger's own sweeper: ``occurred_at`` is the ledger's clock, so each
    open session's age is measured on the ledger's clock too (from its recorded start)."""
    ctx = _context(cmd, repo, recorded_at)
    timed_out = []
    for session_id in sorted(ctx.station.open_sessions, key=ctx.station.open_sessions.__getitem__):
        session = repo.get(SwapSession, session_id)
        if session is not None and session.overdue(cmd.occurred_at, ctx.policy.session_timeout_s):
            time_out(repo, session, ctx.at, ctx.policy, ctx.version)
            timed_out.append(session_id)
    return Outcome.accepted(station_id=ctx.station.key, timed_out=timed_out)
