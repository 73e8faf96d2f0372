"""A hypothesis state machine that drives random command sequences through any ledger.

Subclass ``SwapMachine`` and implement ``make_driver()``; the driver needs three methods:

- ``execute(command, key) -> Outcome`` runs one command with an idempotency key (raising a
  ``DomainError`` for bad input, like the ledger does);
- ``get(cls, key) -> Aggregate | None`` is the current committed aggregate;
- ``events() -> list[DomainEvent]`` is every stored event, in order.

After every step it checks: each battery is in exactly one place and stations' slots,
reservations and riders' held batteries agree with it; open sessions agree between session,
station and rider; no battery was ever issued while a rider held it; the usage on bills adds
up to the energy of the swaps; and replaying each stored stream rebuilds the driver's
aggregate exactly. Ids carry a random per-run prefix, so runs can share one database; only
this run's streams (and the global policy) are checked.

Example::

    class MemorySwapMachine(SwapMachine):
        def make_driver(self):
            return MemoryLedger()

    TestMemory = MemorySwapMachine.TestCase
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from domain.base import Aggregate, DomainError, DomainEvent, Outcome
from domain.battery import Battery
from domain.billing import BillingPeriod
from domain.card import Card
from domain.commands import (
    AuthorizeCard,
    BlockCard,
    ChangePolicy,
    CloseBillingPeriod,
    Command,
    CompleteSwap,
    CorrectSwap,
    DeactivateRider,
    DefinePlan,
    DockBattery,
    InitiateSwap,
    IssueCard,
    QuarantineBattery,
    ReactivateRider,
    RecordHealthReading,
    RecordPayment,
    RecordStationStatus,
    RegisterBattery,
    RegisterRider,
    RegisterStation,
    ReinstateBattery,
    RemoveBattery,
    RetireBattery,
    SendBatteryToRepair,
    SlotReport,
    StationRefusedSwap,
    SuspendRider,
    TimeOutSessions,
    UnblockCard,
    UpdateBattery,
    UpdatePlan,
    UpdateRider,
    UpdateStation,
)
from domain.plan import Plan
from domain.policy import Policy
from domain.rider import Rider
from domain.session import SwapSession
from domain.station import Station
from domain.validation import month_of

A = TypeVar("A", bound=Aggregate)

T0 = datetime(2025, 6, 27, 8, 0, tzinfo=UTC)
POOLS = {"S": 3, "B": 14, "R": 5, "C": 7, "P": 2}  # id pools: stations, batteries, ...
SLOTS = 4
CLASSES: dict[str, type[Aggregate]] = {
    cls.prefix: cls
    for cls in (Station, Battery, Rider, Card, SwapSession, Plan, BillingPeriod, Policy)
}
USAGE = (BillingPeriod.UsageRecorded, BillingPeriod.AdjustmentRecorded)

index = st.integers(1, 8)
station_no = st.sampled_from([1, 1, 2, 2, 3])  # mostly the two stations of the scene
rider_no = st.sampled_from([1, 2, 3, 1, 2, 3, 4, 5])  # mostly the riders of the scene
percent = st.one_of(st.integers(0, 100), st.floats(0, 100, allow_nan=False), st.just(95))
maybe_percent = st.none() | percent
seconds = st.sampled_from([1, 5, 30, 90, 125, 600, 3600, 86_400, 10 * 86_400, 20 * 86_400])
GRADING = [QuarantineBattery, ReinstateBattery, SendBatteryToRepair, RetireBattery]
RIDER_STATUS = [SuspendRider, ReactivateRider, ReactivateRider, DeactivateRider]


class Driver(Protocol):
    def execute(self, command: Command, key: str | None) -> Outcome: ...

    def get(self, cls: type[A], key: str) -> A | None: ...

    def events(self) -> list[DomainEvent]: ...


def normal(outcome: Outcome) -> Any:
    """An Outcome as the JSON the ledger stores, for comparing a repeat with the original."""
    return json.loads(json.dumps(outcome.to_dict()))


class SwapMachine(RuleBasedStateMachine):
    """Random commands through ``make_driver()``; invariants after every step."""

    def make_driver(self) -> Driver:
        """The ledger under test; its recording clock should be ``self.clock`` (the
        machine's time), as the ledger's sweeper measures session age on that clock."""
        raise NotImplementedError("subclasses return the ledger under test")

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.driver = self.make_driver()
        self.run = uuid.uuid4().hex[:8]
        self.serial = 0
        self.sessions: list[str] = []
        self.done: list[tuple[Command, str, Any]] = []

    # --- plumbing --------------------------------------------------------------------------

    def id(self, kind: str, number: int) -> str:
        """This run's id number ``number`` of a pool (S, B, R, C, P), wrapping around."""
        return f"{self.run}-{kind}{(number - 1) % POOLS[kind] + 1}"

    def clock(self) -> datetime:
        return self.now

    def tick(self, by: float = 1) -> datetime:
        self.now += timedelta(seconds=by)
        return self.now

    def new_session_id(self) -> str:
        self.serial += 1
        self.sessions.append(f"{self.run}-s{self.serial}")
        return self.sessions[-1]

    def do(self, cls: type[Command], **fields: Any) -> Outcome | None:
        """Run a command (at the next tick unless ``occurred_at`` is given) with a new key;
        None if the ledger rejected it as bad input."""
        fields.setdefault("occurred_at", self.tick())
        command = cls(**fields)
        self.serial += 1
        key = f"{self.run}-k{self.serial}"
        try:
            outcome = self.driver.execute(command, key)
        except DomainError:
            return None
        self.done.append((command, key, normal(outcome)))
        return outcome

    def get(self, cls: type[A], key: str) -> A | None:
        return self.driver.get(cls, key)

    def rider(self, r: int) -> Rider | None:
        return self.get(Rider, self.id("R", r))

    # --- the scene ---------------------------------------------------------------------------

    @initialize()
    def scene(self) -> None:
        """Two stations with charged batteries, a plan, riders each holding a battery."""
        money = {"monthly_fee": Decimal("10.00"), "extra_ah_rate": Decimal("0.50")}
        self.do(DefinePlan, plan_id=self.id("P", 1), name="Basic", included_ah=20, **money)
        for s in (1, 2):
            self.do(RegisterStation, station_id=self.id("S", s), name=f"S{s}", slot_count=SLOTS)
        kind = {"battery_type": "48V", "manufactured_on": "2024-01-01"}
        for b in range(1, 7):
            docked = {"station_id": self.id("S", 1 + (b - 1) // 3), "slot": (b - 1) % 3 + 1}
            battery = {"battery_id": self.id("B", b), "capacity_ah": Decimal("30")}
            self.do(RegisterBattery, **battery, **docked, **kind, soc=90 + b, soh=90)
        for r in (1, 2, 3):
            battery = {"battery_id": self.id("B", 6 + r), "capacity_ah": Decimal("20.5")}
            self.do(RegisterBattery, **battery, **kind, soc=100, soh=88)
            personal = {"name": f"Rider {r}"}
            rider = {"rider_id": self.id("R", r), "rfid_code": self.id("C", r)}
            self.do(
                RegisterRider,
                **rider,
                personal=personal,
                plan_id=self.id("P", 1),
                battery_id=battery["battery_id"],
            )

    # --- time --------------------------------------------------------------------------------

    @rule(by=seconds)
    def time_passes(self, by: int) -> None:
        self.tick(by)

    @rule(days=st.integers(16, 45))
    def long_pause(self, days: int) -> None:
        """Long enough for a month to end, or a bill's grace to run out (rule 3)."""
        self.tick(days * 86_400)

    # --- stations ----------------------------------------------------------------------------

    @rule(s=station_no, slots=st.integers(0, 6))
    def register_station(self, s: int, slots: int) -> None:
        self.do(RegisterStation, station_id=self.id("S", s), name="New", slot_count=slots)

    @rule(s=station_no, slots=st.none() | st.integers(1, 6), lat=st.none() | st.floats(-90, 90))
    def update_station(self, s: int, slots: int | None, lat: float | None) -> None:
        self.do(UpdateStation, station_id=self.id("S", s), slot_count=slots, lat=lat)

    @rule(
        s=station_no,
        status=st.sampled_from(["online", "online", "offline", "maintenance"]),
        source=st.sampled_from(["heartbeat", "will", "admin"]),
        late=st.sampled_from([0, 0, 300]),
        report=st.lists(st.tuples(st.integers(1, SLOTS), st.none() | index), max_size=3),
    )
    def station_status(self, s: int, status: str, source: str, late: int, report: list) -> None:
        """Heartbeats, wills and admin status, some arriving late."""
        slots = tuple(SlotReport(slot=n, battery_id=b and self.id("B", b)) for n, b in report)
        at = self.tick() - timedelta(seconds=late)
        station_id = self.id("S", s)
        self.do(
            RecordStationStatus,
            occurred_at=at,
            station_id=station_id,
            status=status,
            source=source,
            slots=slots,
        )

    # --- batteries ---------------------------------------------------------------------------

    @rule(b=index, s=st.none() | station_no, slot=st.integers(1, SLOTS), soc=percent)
    def register_battery(self, b: int, s: int | None, slot: int, soc: float) -> None:
        docked = {"station_id": self.id("S", s), "slot": slot} if s else {}
        self.do(
            RegisterBattery,
            battery_id=self.id("B", b),
            battery_type="48V",
            capacity_ah=Decimal("25.5"),
            manufactured_on="2024-05-05",
            soc=soc,
            **docked,
        )

    @rule(b=index, capacity=st.decimals(1, 60, places=1))
    def update_battery(self, b: int, capacity: Decimal) -> None:
        self.do(UpdateBattery, battery_id=self.id("B", b), capacity_ah=capacity)

    @rule(b=index, s=station_no, slot=st.integers(1, SLOTS), soc=maybe_percent)
    def dock_battery(self, b: int, s: int, slot: int, soc: float | None) -> None:
        station_id, battery_id = self.id("S", s), self.id("B", b)
        self.do(DockBattery, station_id=station_id, slot=slot, battery_id=battery_id, soc=soc)

    @rule(b=index, reason=st.sampled_from(["maintenance", "dispensed", "fault"]))
    def remove_battery(self, b: int, reason: str) -> None:
        battery = self.get(Battery, self.id("B", b))
        if battery is None or battery.custody["kind"] != "slot":
            return
        custody = {k: battery.custody[k] for k in ("station_id", "slot")}
        self.do(RemoveBattery, battery_id=battery.key, reason=reason, **custody)

    @rule(
        b=index,
        soc=maybe_percent,
        soh=maybe_percent,
        cycles=st.none() | st.integers(0, 2000),
        late=st.sampled_from([0, 0, 60, 86_400]),
    )
    def health_reading(self, b: int, soc: Any, soh: Any, cycles: Any, late: int) -> None:
        """Readings arrive late and out of order too."""
        at = self.tick() - timedelta(seconds=late)
        reading = {"soc": soc, "soh": soh, "cycle_count": cycles, "max_temp": 30.5}
        self.do(RecordHealthReading, occurred_at=at, battery_id=self.id("B", b), **reading)

    @rule(s=station_no, n=st.integers(0, SLOTS))
    def charge(self, s: int, n: int) -> None:
        """A docked battery reports it is full."""
        battery_id = self.station_battery(self.id("S", s), n)
        if battery_id is not None:
            self.do(RecordHealthReading, battery_id=battery_id, soc=100, soh=92)

    @rule(b=index, action=st.sampled_from(GRADING))
    def grade_battery(self, b: int, action: type[Command]) -> None:
        self.do(action, battery_id=self.id("B", b), reason="machine")

    # --- riders, cards, plans, policy ----------------------------------------------------------

    @rule(r=rider_no, c=st.none() | index, b=st.none() | index, p=st.none() | index)
    def register_rider(self, r: int, c: int | None, b: int | None, p: int | None) -> None:
        ids = {"rfid_code": c and self.id("C", c), "battery_id": b and self.id("B", b)}
        self.do(
            RegisterRider,
            rider_id=self.id("R", r),
            personal={"name": "New"},
            plan_id=p and self.id("P", p),
            **ids,
        )

    @rule(r=rider_no, p=st.none() | index)
    def update_rider(self, r: int, p: int | None) -> None:
        plan_id = p and self.id("P", p)
        self.do(UpdateRider, rider_id=self.id("R", r), personal={"phone": "+250"}, plan_id=plan_id)

    @rule(r=rider_no, action=st.sampled_from(RIDER_STATUS))
    def rider_status(self, r: int, action: type[Command]) -> None:
        self.do(action, rider_id=self.id("R", r))

    @rule(c=index, r=rider_no)
    def issue_card(self, c: int, r: int) -> None:
        self.do(IssueCard, rfid_code=self.id("C", c), rider_id=self.id("R", r))

    @rule(c=index, block=st.sampled_from(["blocked", "lost", None]))
    def card_status(self, c: int, block: str | None) -> None:
        if block is None:
            self.do(UnblockCard, rfid_code=self.id("C", c))
        else:
            self.do(BlockCard, rfid_code=self.id("C", c), status=block)

    @rule(p=index, fee=st.decimals(0, 50, places=2), rate=st.decimals(0, 2, places=3))
    def plan(self, p: int, fee: Decimal, rate: Decimal) -> None:
        terms = {"plan_id": self.id("P", p), "monthly_fee": fee, "extra_ah_rate": rate}
        if self.get(Plan, terms["plan_id"]) is None:
            self.do(DefinePlan, name="Plan", included_ah=Decimal("10"), **terms)
        else:
            self.do(UpdatePlan, **terms)

    @rule(
        min_issue_soc=st.none() | st.integers(50, 95),
        session_timeout_s=st.none() | st.integers(30, 600),
        payment_grace_days=st.none() | st.integers(0, 30),
        retire_soh=st.none() | st.integers(40, 75),
    )
    def change_policy(self, **values: int | None) -> None:
        self.do(ChangePolicy, **values)

    # --- swaps -------------------------------------------------------------------------------

    def active_card(self, rider: Rider | None) -> str | None:
        for c in range(1, POOLS["C"] + 1):
            card = self.get(Card, self.id("C", c))
            if rider and card and card.rider_id == rider.key and card.status == "active":
                return card.key
        return None

    def open_session(self, r: int) -> SwapSession | None:
        found = self.rider(r)
        if found is None or found.open_session_id is None:
            return None
        return self.get(SwapSession, found.open_session_id)

    def held(self, r: int, other: int | None = None) -> str:
        """Usually the battery the rider holds (rule 7 passes), sometimes another."""
        found = self.rider(r)
        if other is None and found is not None and found.batteries:
            return found.batteries[0]
        return self.id("B", other or 1)

    def station_battery(self, station_id: str, n: int) -> str | None:
        found = self.get(Station, station_id)
        docked = sorted(found.docked().values()) if found is not None else []
        return docked[n % len(docked)] if docked else None

    @rule(c=st.none() | index, r=rider_no, s=station_no)
    def authorize(self, c: int | None, r: int, s: int) -> None:
        """Mostly the rider's own card (so a session opens), sometimes any card."""
        card = self.id("C", c) if c else self.active_card(self.rider(r)) or self.id("C", r)
        session_id = self.new_session_id()
        self.do(AuthorizeCard, station_id=self.id("S", s), rfid_code=card, session_id=session_id)

    @rule(r=rider_no, s=station_no, wait=st.sampled_from([60, 121, 600]))
    def abandoned_session(self, r: int, s: int, wait: int) -> None:
        """A rider walks away after the auth; the station sweeps later (rule 15)."""
        self.authorize(None, r, s)
        self.do(TimeOutSessions, occurred_at=self.tick(wait), station_id=self.id("S", s))

    @rule(
        r=rider_no,
        other=st.none() | index,
        soh=st.sampled_from([90, 90, 65, 50]),
        temperature=st.sampled_from([30.0, 30.0, 60.0]),
        pick=st.booleans(),
        by_rider=st.booleans(),
    )
    def initiate(
        self, r: int, other: Any, soh: int, temperature: float, pick: bool, by_rider: bool
    ) -> None:
        session = self.open_session(r)
        if session is None:
            return
        found = {"rider_id": self.id("R", r)} if by_rider else {"session_id": session.key}
        self.do(
            InitiateSwap,
            station_id=session.station_id,
            battery_in_id=self.held(r, other),
            soc=35,
            soh=soh,
            temperature=temperature,
            pick_battery=pick,
            **found,
        )

    @rule(
        r=rider_no,
        n=st.integers(0, SLOTS),
        other=st.none() | index,
        out_soc=maybe_percent,
        in_soc=maybe_percent,
        use_pick=st.booleans(),
    )
    def complete(
        self, r: int, n: int, other: Any, out_soc: Any, in_soc: Any, use_pick: bool
    ) -> None:
        session = self.open_session(r)
        if session is None:
            return
        out = None if use_pick else self.station_battery(session.station_id, n)
        self.do(
            CompleteSwap,
            station_id=session.station_id,
            session_id=session.key,
            battery_in_id=self.held(r, other),
            battery_out_id=out,
            in_soc=in_soc,
            out_soc=out_soc,
        )

    def swap(
        self,
        r: int,
        s: int,
        pick: bool,
        in_soc: int,
        at: datetime,
        soh: float = 90,
        temperature: float = 30,
    ) -> None:
        """Auth, initiate, complete in a row, as a station does."""
        card = self.active_card(self.rider(r))
        if card is None:
            return
        where = {"station_id": self.id("S", s)}
        auth = self.do(
            AuthorizeCard, occurred_at=at, **where, rfid_code=card, session_id=self.new_session_id()
        )
        if auth is None or not auth.ok:
            return
        held, session = self.held(r), {"session_id": auth.data["session_id"], **where}
        start = self.do(
            InitiateSwap,
            occurred_at=at + timedelta(seconds=5),
            **session,
            battery_in_id=held,
            soc=in_soc,
            soh=soh,
            temperature=temperature,
            pick_battery=pick,
        )
        if start is None or not start.ok:
            return
        out = start.data["battery_out_id"] or self.station_battery(where["station_id"], in_soc)
        self.do(
            CompleteSwap,
            occurred_at=at + timedelta(seconds=20),
            **session,
            battery_in_id=held,
            battery_out_id=out,
            in_soc=in_soc,
        )

    @rule(r=rider_no, s=station_no, in_soc=st.integers(0, 100))
    def swap_v2(self, r: int, s: int, in_soc: int) -> None:
        self.swap(r, s, True, in_soc, self.tick())

    @rule(
        r=rider_no,
        s=station_no,
        in_soc=st.integers(0, 100),
        soh=st.sampled_from([90, 65, 50]),
        temperature=st.sampled_from([30, 30, 60]),
    )
    def swap_v1(self, r: int, s: int, in_soc: int, soh: int, temperature: int) -> None:
        """The station picks; the returned battery may be refused (rules 8-10)."""
        self.swap(r, s, False, in_soc, self.tick(), soh, temperature)

    @rule(r=rider_no, s=station_no, in_soc=st.integers(0, 100), days=st.integers(20, 70))
    def late_swap(self, r: int, s: int, in_soc: int, days: int) -> None:
        """A station uploading late: the swap may fall in a month already billed."""
        self.swap(r, s, True, in_soc, self.tick() - timedelta(days=days))

    @rule(r=rider_no, soh=maybe_percent)
    def station_refused(self, r: int, soh: float | None) -> None:
        session = self.open_session(r)
        if session is not None:
            self.do(
                StationRefusedSwap,
                station_id=session.station_id,
                rider_id=self.id("R", r),
                battery_id=self.held(r),
                station_reason="too weak",
                soh=soh,
            )

    @rule(s=station_no)
    def time_out_sessions(self, s: int) -> None:
        self.do(TimeOutSessions, station_id=self.id("S", s))

    @precondition(lambda self: bool(self.sessions))
    @rule(n=index, returned_soc=maybe_percent, returned_issue_soc=maybe_percent)
    def correct_swap(self, n: int, **soc: float | None) -> None:
        session_id = self.sessions[n % len(self.sessions)]
        self.do(CorrectSwap, session_id=session_id, note="machine", **soc)

    # --- billing -----------------------------------------------------------------------------

    def month_before(self, months: int) -> str:
        return month_of(self.now - timedelta(days=31 * months))

    @rule(r=rider_no, months=st.integers(0, 3))
    def close_billing(self, r: int, months: int) -> None:
        self.do(CloseBillingPeriod, rider_id=self.id("R", r), month=self.month_before(months))

    @rule()
    def billing_run(self) -> None:
        """Close last month for every rider (a month-end job)."""
        for r in range(1, POOLS["R"] + 1):
            self.close_billing(r, 1)

    @rule(r=rider_no, n=st.integers(0, 3), part=st.sampled_from(["all", "all", "half", "excess"]))
    def record_payment(self, r: int, n: int, part: str) -> None:
        """Pay one of the rider's outstanding bills (or an arbitrary month, which fails)."""
        found = self.rider(r)
        months = sorted(found.bills) if found is not None else []
        month = months[n % len(months)] if months else self.month_before(n)
        bill = self.get(BillingPeriod, BillingPeriod.key_of(self.id("R", r), month))
        due = bill.outstanding if bill is not None else Decimal("1")
        amount = {"all": due, "half": (due / 2).quantize(Decimal("0.01")), "excess": due + 1}
        self.do(RecordPayment, rider_id=self.id("R", r), month=month, amount=amount[part])

    # --- idempotency -------------------------------------------------------------------------

    @precondition(lambda self: bool(self.done))
    @rule(n=st.integers(0, 10_000))
    def repeat_a_key(self, n: int) -> None:
        """A redelivered message: same key, same Outcome, nothing appended."""
        command, key, outcome = self.done[n % len(self.done)]
        before = len(self.driver.events())
        assert normal(self.driver.execute(command, key)) == outcome
        assert len(self.driver.events()) == before

    # --- invariants --------------------------------------------------------------------------

    def streams(self) -> dict[str, list[DomainEvent]]:
        """This run's streams (and the global policy), events in stored order."""
        streams: dict[str, list[DomainEvent]] = defaultdict(list)
        for event in self.driver.events():
            if self.run in event.originator_id or event.originator_id == "policy:current":
                streams[event.originator_id].append(event)
        return streams

    def every(self, cls: type[A], kind: str) -> dict[str, A]:
        found = (self.get(cls, self.id(kind, n)) for n in range(1, POOLS[kind] + 1))
        return {a.key: a for a in found if a is not None}

    @invariant()
    def custody_is_in_one_place(self) -> None:
        stations, riders = self.every(Station, "S"), self.every(Rider, "R")
        held = [b for r in riders.values() for b in r.batteries]
        assert len(held) == len(set(held)), f"a battery held twice: {held}"
        batteries = self.every(Battery, "B")
        for battery in batteries.values():
            self.check_custody(battery, stations, riders)
        for station in stations.values():
            for slot, battery_id in station.docked().items():
                assert batteries[battery_id].docked_at(station.key) == slot
            for battery_id, session_id in station.reservations.items():
                assert batteries[battery_id].reserved_for == session_id
        for found in riders.values():
            assert all(batteries[b].holder == found.key for b in found.batteries)

    @staticmethod
    def check_custody(
        battery: Battery, stations: dict[str, Station], riders: dict[str, Rider]
    ) -> None:
        custody = battery.custody
        in_slots = [
            (s.key, n) for s in stations.values() for n, b in s.docked().items() if b == battery.key
        ]
        expected = [(custody["station_id"], custody["slot"])] if custody["kind"] == "slot" else []
        assert in_slots == expected, (battery.key, custody, in_slots)
        holders = [r.key for r in riders.values() if battery.key in r.batteries]
        assert holders == ([custody["rider_id"]] if custody["kind"] == "rider" else [])
        if battery.reserved_for is not None:
            reservations = stations[custody["station_id"]].reservations
            assert reservations.get(battery.key) == battery.reserved_for

    @invariant()
    def open_sessions_agree(self) -> None:
        for found in self.every(Station, "S").values():
            for session_id in found.open_sessions:
                session = self.get(SwapSession, session_id)
                assert session is not None
                assert session.is_open, (session_id, session.status)
        for found in self.every(Rider, "R").values():
            if found.open_session_id is not None:
                session = self.get(SwapSession, found.open_session_id)
                assert session is not None
                assert session.is_open
                assert session.rider_id == found.key

    @invariant()
    def usage_adds_up_and_no_battery_is_issued_twice(self) -> None:
        streams = self.streams()
        billed = sum(
            (e.energy_ah for events in streams.values() for e in events if isinstance(e, USAGE)),
            Decimal(0),
        )
        used = Decimal(0)
        for stream_id in streams:
            if stream_id.startswith("session:"):
                session = self.get(SwapSession, stream_id.split(":", 1)[1])
                assert session is not None
                used += session.energy_used_ah or 0
            if stream_id.startswith("battery:"):
                self.check_issue_history(streams[stream_id])
        assert billed == used, (billed, used)

    @staticmethod
    def check_issue_history(events: list[DomainEvent]) -> None:
        holder: str | None = None
        for event in events:
            if isinstance(event, Battery.Issued | Battery.HandedOver):
                assert holder is None, f"{event.originator_id} issued while {holder} held it"
                holder = event.rider_id
            elif isinstance(event, Battery.Returned):
                assert holder == event.rider_id
                holder = None

    @invariant()
    def replay_rebuilds_every_aggregate(self) -> None:
        for stream_id, events in self.streams().items():
            assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
            prefix, key = stream_id.split(":", 1)
            replayed = CLASSES[prefix].replay(events)
            current = self.get(CLASSES[prefix], key)
            assert replayed is not None
            assert current is not None
            assert replayed.state() == current.state(), stream_id
