"""Every event class: nested, past tense, JSON-safe field types, decisions carry the policy."""

from __future__ import annotations

import dataclasses
import re
import typing
from datetime import datetime
from decimal import Decimal
from types import NoneType, UnionType

import pytest

import domain.handlers  # noqa: F401 - imports every aggregate module
from domain.base import Aggregate, DomainEvent

pytestmark = pytest.mark.unit

ALLOWED = {str, int, float, bool, NoneType, Decimal, datetime, typing.Any}
DECISIONS = {
    "SwapSession.CardAuthorized",
    "SwapSession.AuthDenied",
    "SwapSession.ReturnAccepted",
    "SwapSession.ReturnedBatteryRefused",
    "SwapSession.BatteryPicked",
    "SwapSession.IssueRefused",
    "SwapSession.PickRefused",
    "SwapSession.Completed",
    "SwapSession.StationRefused",
    "SwapSession.Cancelled",
    "SwapSession.TimedOut",
    "SwapSession.Corrected",
    "Battery.Issued",
    "Battery.Returned",
    "Battery.Reserved",
    "Battery.Quarantined",
    "Battery.Retired",
    "Station.BatteryReserved",
    "BillingPeriod.Closed",
}


def event_classes() -> list[type[DomainEvent]]:
    found = []
    for aggregate in Aggregate.__subclasses__():
        if not aggregate.__module__.startswith("domain."):
            continue  # the ledger's own bookkeeping aggregates are not the domain's
        for value in vars(aggregate).values():
            if isinstance(value, type) and issubclass(value, DomainEvent):
                found.append(value)
    return found


EVENTS = event_classes()


def allowed(hint: object) -> bool:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, UnionType):
        return all(allowed(arg) for arg in typing.get_args(hint))
    if origin in (list, dict):
        args = typing.get_args(hint)
        return (origin is list or args[0] is str) and all(allowed(arg) for arg in args)
    return hint in ALLOWED


def test_there_are_events_for_every_aggregate() -> None:
    prefixes = {cls.__qualname__.split(".")[0] for cls in EVENTS}
    assert prefixes >= {
        "Station",
        "Battery",
        "Rider",
        "Card",
        "SwapSession",
        "Plan",
        "BillingPeriod",
        "Policy",
        "RejectedMessage",
    }
    assert len(EVENTS) > 40


@pytest.mark.parametrize("cls", EVENTS, ids=lambda c: c.__qualname__)
def test_event_is_a_frozen_nested_past_tense_dataclass(cls) -> None:
    assert "." in cls.__qualname__
    params = cls.__dataclass_params__  # type: ignore[attr-defined]
    assert params.frozen
    words = re.findall("[A-Z][a-z]*", cls.__name__)
    assert any(w.endswith("ed") or w == "Sent" for w in words), cls.__name__
    assert "apply" in vars(cls), f"{cls.__qualname__} changes nothing"


@pytest.mark.parametrize("cls", EVENTS, ids=lambda c: c.__qualname__)
def test_event_fields_are_json_safe(cls) -> None:
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        assert allowed(hints[field.name]), f"{cls.__qualname__}.{field.name}: {hints[field.name]}"


@pytest.mark.parametrize("cls", EVENTS, ids=lambda c: c.__qualname__)
def test_decision_events_carry_the_policy_version(cls) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    if cls.__qualname__ in DECISIONS:
        assert "policy_version" in names


def test_every_command_has_a_handler() -> None:
    from domain.commands import Command
    from domain.handlers import HANDLERS

    def subclasses(cls: type) -> list[type]:
        return [sub for direct in cls.__subclasses__() for sub in (direct, *subclasses(direct))]

    missing = [c.__name__ for c in subclasses(Command) if c not in HANDLERS]
    assert missing == []


def test_every_reason_code_is_asserted_somewhere_in_these_tests() -> None:
    from pathlib import Path

    from domain.reasons import Reason

    here = Path(__file__).parent
    sources = "".join(p.read_text() for p in here.glob("test_*.py") if p.name != "test_events.py")
    untested = [r.value for r in Reason if f'"{r.value}"' not in sources]
    assert untested == []
