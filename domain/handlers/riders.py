"""Riders and their RFID cards."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from domain import validation as v
from domain.base import InvalidCommand, InvalidTransition, Outcome, Repository, Stamp
from domain.battery import Battery
from domain.card import Card
from domain.commands import (
    BlockCard,
    DeactivateRider,
    EraseRider,
    IssueCard,
    ReactivateRider,
    RegisterRider,
    SuspendRider,
    UnblockCard,
    UpdateRider,
)
from domain.handlers.custody import unslot
from domain.handlers.registry import absent, existing, handles, stamp
from domain.plan import Plan
from domain.rider import PERSONAL_FIELDS, Rider


def _personal(given: Any, base: Any) -> dict[str, str | None]:
    """Merge given personal fields into ``base``; every known field is present in the result.
    ``base`` is whatever the ledger decrypted (not a dict once the rider was erased: then
    the merge starts from nothing)."""
    if not isinstance(given, dict):
        raise InvalidCommand("personal", "must be an object of text fields")
    unknown = sorted(set(given) - set(PERSONAL_FIELDS))
    if unknown:
        raise InvalidCommand("personal", f"unknown fields {unknown}")
    base = base if isinstance(base, dict) else {}
    merged = {name: base.get(name) for name in PERSONAL_FIELDS}
    for name, value in given.items():
        if value is not None and not isinstance(value, str):
            raise InvalidCommand(f"personal.{name}", "must be text")
        merged[name] = (value.strip() or None) if isinstance(value, str) else None
    return merged


def _plan(repo: Repository, plan_id: str | None) -> str | None:
    if plan_id is None:
        return None
    return existing(repo, Plan, v.text("plan_id", plan_id), "plan_id").key


def _handed_over(repo: Repository, battery_id: str | None) -> Battery | None:
    """A battery given to a new rider must be in a slot or the warehouse, grade ok, unreserved."""
    if battery_id is None:
        return None
    battery = existing(repo, Battery, v.text("battery_id", battery_id), "battery_id")
    if battery.custody["kind"] not in ("slot", "warehouse") or battery.grade != "ok":
        raise InvalidTransition(
            f"battery {battery.key} cannot be handed over ({battery.custody['kind']}, "
            f"{battery.grade})",
            battery_id=battery.key,
        )
    if battery.reserved_for is not None:
        raise InvalidTransition(f"battery {battery.key} is reserved", battery_id=battery.key)
    return battery


@handles(RegisterRider)
def register_rider(cmd: RegisterRider, repo: Repository, recorded_at: datetime) -> Outcome:
    """One command makes the rider, their first card and the hand-over of a battery."""
    rider_id = v.text("rider_id", cmd.rider_id)
    personal = _personal(cmd.personal, {})
    if personal["name"] is None:
        raise InvalidCommand("personal.name", "is required")
    plan_id = _plan(repo, cmd.plan_id)
    fields = {"vehicle": v.optional_text("vehicle", cmd.vehicle), "role": v.text("role", cmd.role)}
    rfid = v.optional_text("rfid_code", cmd.rfid_code)
    absent(repo, Rider, rider_id, "rider_id")
    if rfid is not None:
        absent(repo, Card, rfid, "rfid_code")
    battery = _handed_over(repo, cmd.battery_id)
    at = stamp(cmd, recorded_at)
    rider = Rider.create(
        rider_id, Rider.Registered, at, personal=personal, plan_id=plan_id, **fields
    )
    repo.add(rider)
    if rfid is not None:
        repo.add(Card.create(rfid, Card.Issued, at, rider_id=rider_id))
    if battery is not None:
        hand_over(repo, battery, rider, at)
    return Outcome.accepted(
        rider_id=rider_id, rfid_code=rfid, battery_id=None if battery is None else battery.key
    )


def hand_over(repo: Repository, battery: Battery, rider: Rider, at: Stamp) -> None:
    """Custody → rider outside a swap; the SOC at hand-over starts the rider's usage."""
    unslot(repo, battery, at, "handed_over")
    battery.trigger(Battery.HandedOver, at, rider_id=rider.key, soc=battery.soc)
    rider.receive(at, battery.key, None)


@handles(UpdateRider)
def update_rider(cmd: UpdateRider, repo: Repository, recorded_at: datetime) -> Outcome:
    rider = existing(repo, Rider, v.text("rider_id", cmd.rider_id), "rider_id")
    if rider.erased and cmd.personal is not None:
        raise InvalidTransition(f"rider {rider.key} was erased", rider_id=rider.key)
    personal = rider.personal if cmd.personal is None else _personal(cmd.personal, rider.personal)
    rider.trigger(
        Rider.Updated,
        stamp(cmd, recorded_at),
        personal=personal,
        vehicle=rider.vehicle if cmd.vehicle is None else v.optional_text("vehicle", cmd.vehicle),
        plan_id=rider.plan_id if cmd.plan_id is None else _plan(repo, cmd.plan_id),
        role=rider.role if cmd.role is None else v.text("role", cmd.role),
    )
    return Outcome.accepted(rider_id=rider.key)


def _status(
    cmd: SuspendRider | ReactivateRider | DeactivateRider,
    repo: Repository,
    recorded_at: datetime,
    event: type[Any],
) -> Outcome:
    rider = existing(repo, Rider, v.text("rider_id", cmd.rider_id), "rider_id")
    rider.change_status(stamp(cmd, recorded_at), event, v.optional_text("reason", cmd.reason))
    return Outcome.accepted(rider_id=rider.key, status=rider.status)


@handles(SuspendRider)
def suspend_rider(cmd: SuspendRider, repo: Repository, recorded_at: datetime) -> Outcome:
    """Rule 2 refuses a suspended rider's next auth; an open session is left to finish."""
    return _status(cmd, repo, recorded_at, Rider.Suspended)


@handles(ReactivateRider)
def reactivate_rider(cmd: ReactivateRider, repo: Repository, recorded_at: datetime) -> Outcome:
    return _status(cmd, repo, recorded_at, Rider.Reactivated)


@handles(EraseRider)
def erase_rider(cmd: EraseRider, repo: Repository, recorded_at: datetime) -> Outcome:
    """Personal data erasure: the rider stays (custody, swaps and bills keep their rider id),
    their personal fields are gone for good. Erasing twice is refused."""
    rider = existing(repo, Rider, v.text("rider_id", cmd.rider_id), "rider_id")
    if rider.erased:
        raise InvalidTransition(f"rider {rider.key} was erased already", rider_id=rider.key)
    rider.trigger(
        Rider.Erased, stamp(cmd, recorded_at), reason=v.optional_text("reason", cmd.reason)
    )
    return Outcome.accepted(rider_id=rider.key, erased=True)


@handles(DeactivateRider)
def deactivate_rider(cmd: DeactivateRider, repo: Repository, recorded_at: datetime) -> Outcome:
    """Final; only once the rider holds no battery and has no open session."""
    return _status(cmd, repo, recorded_at, Rider.Deactivated)


@handles(IssueCard)
def issue_card(cmd: IssueCard, repo: Repository, recorded_at: datetime) -> Outcome:
    rfid = v.text("rfid_code", cmd.rfid_code)
    rider = existing(repo, Rider, v.text("rider_id", cmd.rider_id), "rider_id")
    if rider.status == "deactivated":
        raise InvalidTransition(f"rider {rider.key} is deactivated", rider_id=rider.key)
    absent(repo, Card, rfid, "rfid_code")
    repo.add(Card.create(rfid, Card.Issued, stamp(cmd, recorded_at), rider_id=rider.key))
    return Outcome.accepted(rfid_code=rfid, rider_id=rider.key)


@handles(BlockCard)
def block_card(cmd: BlockCard, repo: Repository, recorded_at: datetime) -> Outcome:
    card = existing(repo, Card, v.text("rfid_code", cmd.rfid_code), "rfid_code")
    status = v.one_of("status", cmd.status, ("blocked", "lost"))
    card.block(stamp(cmd, recorded_at), status, v.optional_text("reason", cmd.reason))
    return Outcome.accepted(rfid_code=card.key, status=card.status)


@handles(UnblockCard)
def unblock_card(cmd: UnblockCard, repo: Repository, recorded_at: datetime) -> Outcome:
    card = existing(repo, Card, v.text("rfid_code", cmd.rfid_code), "rfid_code")
    card.unblock(stamp(cmd, recorded_at), v.optional_text("reason", cmd.reason))
    return Outcome.accepted(rfid_code=card.key, status=card.status)
