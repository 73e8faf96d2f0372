"""Admin commands on stations, batteries, plans and the policy."""

from __future__ import annotations

from datetime import datetime

from domain import validation as v
from domain.base import InvalidCommand, InvalidTransition, Outcome, Repository
from domain.battery import Battery, in_slot, place
from domain.commands import (
    ChangePolicy,
    DefinePlan,
    QuarantineBattery,
    RegisterBattery,
    RegisterStation,
    ReinstateBattery,
    RetireBattery,
    SendBatteryToRepair,
    UpdateBattery,
    UpdatePlan,
    UpdateStation,
)
from domain.handlers.custody import free, not_with_rider, unslot
from domain.handlers.registry import absent, existing, handles, stamp
from domain.plan import Plan
from domain.policy import Policy, PolicyValues, current_policy
from domain.station import Station


def _coordinates(lat: object, lng: object) -> tuple[float | None, float | None]:
    return v.optional_number("lat", lat, -90, 90), v.optional_number("lng", lng, -180, 180)


@handles(RegisterStation)
def register_station(cmd: RegisterStation, repo: Repository, recorded_at: datetime) -> Outcome:
    station_id, name = v.text("station_id", cmd.station_id), v.text("name", cmd.name)
    slot_count = v.count("slot_count", cmd.slot_count, low=1)
    location = "" if cmd.location is None else str(cmd.location).strip()
    lat, lng = _coordinates(cmd.lat, cmd.lng)
    absent(repo, Station, station_id, "station_id")
    station = Station.create(
        station_id,
        Station.Registered,
        stamp(cmd, recorded_at),
        name=name,
        location=location,
        lat=lat,
        lng=lng,
        slot_count=slot_count,
    )
    repo.add(station)
    return Outcome.accepted(station_id=station_id)


@handles(UpdateStation)
def update_station(cmd: UpdateStation, repo: Repository, recorded_at: datetime) -> Outcome:
    station = existing(repo, Station, v.text("station_id", cmd.station_id), "station_id")
    lat, lng = _coordinates(cmd.lat, cmd.lng)
    station.update(
        stamp(cmd, recorded_at),
        name=station.name if cmd.name is None else v.text("name", cmd.name),
        location=station.location if cmd.location is None else cmd.location.strip(),
        lat=station.lat if lat is None else lat,
        lng=station.lng if lng is None else lng,
        slot_count=station.slot_count
        if cmd.slot_count is None
        else v.count("slot_count", cmd.slot_count, low=1),
    )
    return Outcome.accepted(station_id=station.key)


@handles(RegisterBattery)
def register_battery(cmd: RegisterBattery, repo: Repository, recorded_at: datetime) -> Outcome:
    battery_id = v.text("battery_id", cmd.battery_id)
    fields = {
        "battery_type": v.text("battery_type", cmd.battery_type),
        "capacity_ah": v.decimal("capacity_ah", cmd.capacity_ah, positive=True),
        "manufactured_on": v.iso_date("manufactured_on", cmd.manufactured_on),
        "soc": v.percent("soc", cmd.soc),
        "soh": v.percent("soh", cmd.soh),
    }
    station = None
    custody = place("warehouse")
    if cmd.station_id is not None or cmd.slot is not None:
        station = existing(repo, Station, v.text("station_id", cmd.station_id), "station_id")
        slot = v.slot("slot", cmd.slot, station.slot_count)
        if station.slots[slot] is not None:
            raise InvalidTransition(f"slot {slot} holds battery {station.slots[slot]}", slot=slot)
        custody = in_slot(station.key, slot)
    absent(repo, Battery, battery_id, "battery_id")
    at = stamp(cmd, recorded_at)
    battery = Battery.create(battery_id, Battery.Registered, at, custody=custody, **fields)
    repo.add(battery)
    if station is not None:
        station.fill_slot(at, custody["slot"], battery_id, "registered")
    return Outcome.accepted(battery_id=battery_id, custody=custody)


@handles(UpdateBattery)
def update_battery(cmd: UpdateBattery, repo: Repository, recorded_at: datetime) -> Outcome:
    battery = existing(repo, Battery, v.text("battery_id", cmd.battery_id), "battery_id")
    battery.trigger(
        Battery.Updated,
        stamp(cmd, recorded_at),
        battery_type=battery.battery_type
        if cmd.battery_type is None
        else v.text("battery_type", cmd.battery_type),
        capacity_ah=battery.capacity_ah
        if cmd.capacity_ah is None
        else v.decimal("capacity_ah", cmd.capacity_ah, positive=True),
        manufactured_on=battery.manufactured_on
        if cmd.manufactured_on is None
        else v.iso_date("manufactured_on", cmd.manufactured_on),
    )
    return Outcome.accepted(battery_id=battery.key)


def _graded(repo: Repository, battery_id: str, allowed: tuple[str, ...], action: str) -> Battery:
    battery = existing(repo, Battery, v.text("battery_id", battery_id), "battery_id")
    if battery.grade not in allowed:
        raise InvalidTransition(
            f"battery {battery.key} is {battery.grade}; cannot {action}", battery_id=battery.key
        )
    return battery


@handles(QuarantineBattery)
def quarantine_battery(cmd: QuarantineBattery, repo: Repository, recorded_at: datetime) -> Outcome:
    """Grade → quarantined; custody unchanged (a docked battery stays in its slot, unissuable)."""
    battery = _graded(repo, cmd.battery_id, ("ok",), "quarantine")
    reason = v.text("reason", cmd.reason)
    _, version = current_policy(repo)
    at = stamp(cmd, recorded_at)
    free(repo, battery, at, "quarantined")
    battery.trigger(Battery.Quarantined, at, reason=reason, policy_version=version)
    return Outcome.accepted(battery_id=battery.key, grade=battery.grade)


@handles(ReinstateBattery)
def reinstate_battery(cmd: ReinstateBattery, repo: Repository, recorded_at: datetime) -> Outcome:
    battery = _graded(repo, cmd.battery_id, ("quarantined",), "reinstate")
    battery.trigger(
        Battery.Reinstated, stamp(cmd, recorded_at), reason=v.text("reason", cmd.reason)
    )
    return Outcome.accepted(battery_id=battery.key, grade=battery.grade)


@handles(SendBatteryToRepair)
def send_to_repair(cmd: SendBatteryToRepair, repo: Repository, recorded_at: datetime) -> Outcome:
    """Custody → repair from a slot or the warehouse; a rider must return it first."""
    battery = _graded(repo, cmd.battery_id, ("ok", "quarantined"), "send to repair")
    reason = v.text("reason", cmd.reason)
    not_with_rider(battery, "send to repair")
    if battery.custody["kind"] == "repair":
        raise InvalidTransition(
            f"battery {battery.key} is already in repair", battery_id=battery.key
        )
    at = stamp(cmd, recorded_at)
    unslot(repo, battery, at, "repair")
    battery.trigger(Battery.SentToRepair, at, reason=reason)
    return Outcome.accepted(battery_id=battery.key, custody=battery.custody)


@handles(RetireBattery)
def retire_battery(cmd: RetireBattery, repo: Repository, recorded_at: datetime) -> Outcome:
    """Grade and custody → retired, out of any slot; a rider must return it first."""
    battery = _graded(repo, cmd.battery_id, ("ok", "quarantined"), "retire")
    reason = v.text("reason", cmd.reason)
    not_with_rider(battery, "retire")
    _, version = current_policy(repo)
    at = stamp(cmd, recorded_at)
    unslot(repo, battery, at, "retired")
    battery.trigger(Battery.Retired, at, reason=reason, policy_version=version)
    return Outcome.accepted(battery_id=battery.key, grade=battery.grade)


def _terms(cmd: DefinePlan | UpdatePlan, plan: Plan | None) -> dict[str, object]:
    def money(name: str) -> object:
        value = getattr(cmd, name)
        return getattr(plan, name) if value is None and plan else v.decimal(name, value)

    name = plan.name if cmd.name is None and plan else v.text("name", cmd.name)
    return {"name": name, **{n: money(n) for n in ("monthly_fee", "included_ah", "extra_ah_rate")}}


@handles(DefinePlan)
def define_plan(cmd: DefinePlan, repo: Repository, recorded_at: datetime) -> Outcome:
    plan_id = v.text("plan_id", cmd.plan_id)
    terms = _terms(cmd, None)
    absent(repo, Plan, plan_id, "plan_id")
    repo.add(Plan.create(plan_id, Plan.Defined, stamp(cmd, recorded_at), **terms))
    return Outcome.accepted(plan_id=plan_id)


@handles(UpdatePlan)
def update_plan(cmd: UpdatePlan, repo: Repository, recorded_at: datetime) -> Outcome:
    plan = existing(repo, Plan, v.text("plan_id", cmd.plan_id), "plan_id")
    plan.trigger(Plan.Updated, stamp(cmd, recorded_at), **_terms(cmd, plan))
    return Outcome.accepted(plan_id=plan.key)


@handles(ChangePolicy)
def change_policy(cmd: ChangePolicy, repo: Repository, recorded_at: datetime) -> Outcome:
    """Merge the given values into the policy in force; the event carries all of them."""
    values, _ = current_policy(repo)
    merged = {
        name: getattr(values, name) if getattr(cmd, name) is None else getattr(cmd, name)
        for name in PolicyValues.names()
    }
    for name in ("min_return_soh", "retire_soh", "min_issue_soc", "min_issue_soh"):
        v.number(name, merged[name], 0, 100)
    v.number("max_return_temp_c", merged["max_return_temp_c"], -40, 150)
    v.count("session_timeout_s", merged["session_timeout_s"], low=1)
    v.count("payment_grace_days", merged["payment_grace_days"], low=0)
    if merged["retire_soh"] > merged["min_return_soh"]:
        raise InvalidCommand("retire_soh", "must not exceed min_return_soh")
    note = v.optional_text("note", cmd.note)
    new = PolicyValues(**merged)
    at = stamp(cmd, recorded_at)
    policy = repo.get(Policy, Policy.KEY)
    if policy is None:
        policy = Policy.define(new, at, note)
        repo.add(policy)
    else:
        policy.change(new, at, note)
    return Outcome.accepted(policy_version=policy.version, **new.as_dict())
