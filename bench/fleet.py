"""A simulated fleet that drives the ledger with real commands: stations, batteries, riders,
telemetry, swaps (v1 and v2 flows), refusals, timeouts, heartbeats, restocking, corrections,
monthly bills and payments, rejected messages.

The fleet keeps its own mirror of the world (custody, SOC, sessions) and plans each
command from it, so commands can be sent in batches (the ledger's group commit) without
waiting for outcomes; every outcome is then checked against what the mirror expected, and
a mismatch stops the run (the mirror would be wrong from then on). Used by the projection
tests (small fleets) and the rebuild benchmark (a million events).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain import commands as c
from domain.base import Outcome

START = datetime(2025, 3, 28, 6, 0, tzinfo=UTC)
MIN_SOC, MIN_SOH = 80.0, 70.0


@dataclass
class Bat:
    id: str
    soc: float
    soh: float
    cycles: int | None = None
    where: tuple[Any, ...] = ("warehouse",)
    grade: str = "ok"


@dataclass
class Stn:
    id: str
    slots: list[str | None]
    status: str = "online"


@dataclass
class Rdr:
    id: str
    card: str
    battery: str | None = None
    open_at: tuple[str, datetime] | None = None
    delinquent: bool = False
    overdue_from: datetime | None = None
    card_status: str = "active"
    status: str = "active"


@dataclass
class Planned:
    """A command, the outcome the mirror expects (None: accepted, else a reason code), and
    an optional check or follow-up run with the actual outcome."""

    command: c.Command
    expect: str | None = None
    then: Callable[[Outcome], None] | None = None


class Mismatch(RuntimeError):
    """Raised when the ledger answered a planned command other than the mirror expected."""


@dataclass
class Fleet:
    stations: int = 5
    slots: int = 8
    batteries: int = 60
    riders: int = 25
    seed: int = 1
    prefix: str = ""
    start: datetime = START
    v2_share: float = 0.3
    swap_weight: float = 0.05
    now: datetime = field(init=False)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.now = self.start
        self.bats: dict[str, Bat] = {}
        self.stns: dict[str, Stn] = {}
        self.rdrs: dict[str, Rdr] = {}
        self.sessions = 0
        self.completed: list[tuple[str, datetime, float]] = []  # session, when, returned soc
        self.pending: deque[Planned] = deque()
        self.timeouts: list[tuple[datetime, str]] = []
        self.month = self.start.strftime("%Y-%m")
        self.counts: dict[str, int] = {}

    # --- helpers ------------------------------------------------------------------------

    def id(self, kind: str, n: int) -> str:
        return f"{self.prefix}{kind}{n}"

    def tick(self, low: float = 0.5, high: float = 4.0) -> datetime:
        self.now += timedelta(seconds=round(self.rng.uniform(low, high), 3))
        return self.now

    def count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def issuable(self, station: Stn) -> list[tuple[int, Bat]]:
        found = []
        for number, battery_id in enumerate(station.slots, start=1):
            if battery_id is None:
                continue
            b = self.bats[battery_id]
            if b.grade == "ok" and b.soc >= MIN_SOC and b.soh >= MIN_SOH:
                found.append((number, b))
        return found

    # --- setup --------------------------------------------------------------------------

    def setup(self) -> Iterator[Planned]:
        t = self.now
        yield Planned(
            c.DefinePlan(
                occurred_at=t,
                plan_id=self.id("plan", 1),
                name="Basic",
                monthly_fee=Decimal("30.00"),
                included_ah=Decimal("150"),
                extra_ah_rate=Decimal("0.25"),
            )
        )
        for n in range(1, self.stations + 1):
            sid = self.id("st", n)
            self.stns[sid] = Stn(sid, [None] * self.slots)
            yield Planned(
                c.RegisterStation(
                    occurred_at=t,
                    station_id=sid,
                    name=f"Station {n}",
                    slot_count=self.slots,
                    location=f"Street {n}",
                    lat=48.0 + n / 1000,
                    lng=11.0 + n / 1000,
                )
            )
        docked_per_station = max(1, self.slots - 2)
        for n in range(1, self.batteries + 1):
            bid = self.id("bat", n)
            b = Bat(
                bid,
                soc=round(self.rng.uniform(60, 100), 1),
                soh=round(self.rng.uniform(85, 100), 1),
            )
            self.bats[bid] = b
            station_n = (n - 1) // docked_per_station + 1
            slot = (n - 1) % docked_per_station + 1
            where: dict[str, Any] = {}
            if station_n <= self.stations:
                sid = self.id("st", station_n)
                self.stns[sid].slots[slot - 1] = bid
                b.where = ("slot", sid, slot)
                where = {"station_id": sid, "slot": slot}
            yield Planned(
                c.RegisterBattery(
                    occurred_at=t,
                    battery_id=bid,
                    battery_type="LFP-48V",
                    capacity_ah=Decimal("40"),
                    manufactured_on="2024-05-01",
                    soc=b.soc,
                    soh=b.soh,
                    **where,
                )
            )
        warehouse = [b for b in self.bats.values() if b.where == ("warehouse",)]
        for n in range(1, self.riders + 1):
            rid = self.id("r", n)
            r = Rdr(rid, card=self.id("card", n))
            self.rdrs[rid] = r
            battery = warehouse.pop() if warehouse else None
            if battery is not None:
                battery.where = ("rider", rid)
                r.battery = battery.id
            yield Planned(
                c.RegisterRider(
                    occurred_at=self.tick(),
                    rider_id=rid,
                    rfid_code=r.card,
                    personal={"name": f"Rider {n}", "email": f"r{n}@example.org", "phone": "+49 1"},
                    vehicle="scooter",
                    plan_id=self.id("plan", 1),
                    battery_id=None if battery is None else battery.id,
                )
            )

    # --- the endless part ---------------------------------------------------------------

    def actions(self) -> Iterator[Planned]:
        while True:
            while self.pending:
                yield self.pending.popleft()
            yield from self._due_timeouts()
            yield from self._month_end()
            roll = self.rng.random()
            if roll < self.swap_weight:
                yield from self.swap()
            elif roll < self.swap_weight + 0.006:
                yield from self.heartbeat()
            elif roll < self.swap_weight + 0.008:
                yield from self.refusal()
            elif roll < self.swap_weight + 0.009:
                yield from self.abandon()
            elif roll < self.swap_weight + 0.0095:
                yield from self.restock()
            elif roll < self.swap_weight + 0.0100:
                yield from self.correction()
            elif roll < self.swap_weight + 0.0104:
                yield from self.rejected()
            elif roll < self.swap_weight + 0.0108:
                yield from self.admin()
            else:
                yield from self.telemetry()

    def telemetry(self) -> Iterator[Planned]:
        station = self.rng.choice(list(self.stns.values()))
        docked = [(n, b) for n, b in enumerate(station.slots, start=1) if b is not None]
        if not docked:
            return
        slot, battery_id = self.rng.choice(docked)
        b = self.bats[battery_id]
        late = self.rng.random() < 0.01
        at = self.now - timedelta(minutes=10) if late else self.tick(0.1, 1.5)
        soc, soh = b.soc, b.soh
        if not late:
            b.soc = soc = round(min(100.0, b.soc + self.rng.uniform(0.5, 6)), 1)
            b.soh = soh = round(max(0.0, b.soh - self.rng.uniform(0, 0.02)), 2)
            b.cycles = (b.cycles or 0) + (1 if self.rng.random() < 0.02 else 0)
        self.count("telemetry")
        yield Planned(
            c.RecordHealthReading(
                occurred_at=at,
                battery_id=battery_id,
                station_id=station.id,
                slot=slot,
                soc=soc,
                soh=soh,
                max_temp=round(self.rng.uniform(22, 41), 1),
                pack_voltage=round(self.rng.uniform(50, 54.6), 2),
                cell_voltage_min=3.2,
                cell_voltage_max=3.4,
                ambient_temp=24.0,
                humidity=40.0,
                internal_resist=round(self.rng.uniform(10, 20), 2),
                cycle_count=b.cycles,
                error_code=None if self.rng.random() > 0.005 else "E12",
            )
        )

    def _rider_for_swap(self) -> Rdr | None:
        for _ in range(20):
            r = self.rdrs[self.rng.choice(list(self.rdrs))]
            if (
                r.battery
                and r.status == "active"
                and r.card_status == "active"
                and not r.delinquent
                and r.open_at is None
                and self.bats[r.battery].soh >= MIN_SOH
            ):
                return r
        return None

    def _station_for_swap(self) -> Stn | None:
        for _ in range(20):
            s = self.stns[self.rng.choice(list(self.stns))]
            if s.status == "online" and self.issuable(s):
                return s
        return None

    def swap(self) -> Iterator[Planned]:
        r, s = self._rider_for_swap(), self._station_for_swap()
        if r is None or s is None or r.battery is None:
            return
        self.sessions += 1
        sid = self.id("s", self.sessions)
        back = self.bats[r.battery]
        yield Planned(
            c.AuthorizeCard(
                occurred_at=self.tick(), station_id=s.id, rfid_code=r.card, session_id=sid
            )
        )
        back.soc = round(self.rng.uniform(5, 50), 1)
        hot = self.rng.random() < 0.02
        temperature = 58.0 if hot else round(self.rng.uniform(25, 40), 1)
        v2 = self.rng.random() < self.v2_share
        yield Planned(
            c.InitiateSwap(
                occurred_at=self.tick(5, 20),
                station_id=s.id,
                battery_in_id=back.id,
                soc=back.soc,
                soh=back.soh,
                temperature=temperature,
                voltage=51.0,
                session_id=sid,
                pick_battery=v2 and not hot,
            ),
            expect="battery_too_hot" if hot else None,
        )
        if hot:
            self.count("refused_hot")
            return
        slot_out, out = self._pick(s, sid) if v2 else self._choose(s)
        empty = [n for n, b in enumerate(s.slots, start=1) if b is None]
        slot_in = empty[0] if empty else slot_out
        s.slots[slot_out - 1] = None
        s.slots[slot_in - 1] = back.id
        back.where = ("slot", s.id, slot_in)
        out.where = ("rider", r.id)
        r.battery = out.id
        at = self.tick(10, 40)
        complete = c.CompleteSwap(
            occurred_at=at,
            station_id=s.id,
            battery_in_id=back.id,
            session_id=sid,
            battery_out_id=None if v2 else out.id,
            out_soc=None if v2 else out.soc,
            out_soh=None if v2 else out.soh,
        )
        expected_out = out.id

        def check(outcome: Outcome) -> None:
            data = outcome.data
            if data.get("battery_out_id") != expected_out or data.get("slot_in") != slot_in:
                raise Mismatch(f"swap {sid}: ledger said {data}, mirror {expected_out}/{slot_in}")

        self.completed.append((sid, at, back.soc))
        self.count("swap")
        yield Planned(complete, then=check)

    def _choose(self, s: Stn) -> tuple[int, Bat]:
        return self.rng.choice(self.issuable(s))

    def _pick(self, s: Stn, sid: str) -> tuple[int, Bat]:
        """Rule 13 as the ledger applies it."""

        def rank(item: tuple[int, Bat]) -> tuple[float, float, float, int]:
            number, b = item
            cycles = float("inf") if b.cycles is None else b.cycles
            return (-b.soc, -b.soh, cycles, number)

        return min(self.issuable(s), key=rank)

    def heartbeat(self) -> Iterator[Planned]:
        s = self.rng.choice(list(self.stns.values()))
        roll = self.rng.random()
        status = "maintenance" if roll < 0.05 else "online"
        s.status = status
        reports = tuple(
            c.SlotReport(
                slot=n,
                battery_id=b,
                state=None
                if b is None
                else ("ready" if self.bats[b].soc >= MIN_SOC else "charging"),
            )
            for n, b in enumerate(s.slots, start=1)
        )
        self.count("heartbeat")
        yield Planned(
            c.RecordStationStatus(
                occurred_at=self.tick(), station_id=s.id, status=status, slots=reports
            )
        )
        if status == "maintenance":
            r = self._rider_for_swap()
            if r is not None:
                self.sessions += 1
                yield Planned(
                    c.AuthorizeCard(
                        occurred_at=self.tick(),
                        station_id=s.id,
                        rfid_code=r.card,
                        session_id=self.id("s", self.sessions),
                    ),
                    expect="station_unavailable",
                )
            s.status = "online"
            yield Planned(
                c.RecordStationStatus(occurred_at=self.tick(), station_id=s.id, status="online")
            )

    def refusal(self) -> Iterator[Planned]:
        s = self.rng.choice(list(self.stns.values()))
        self.sessions += 1
        sid = self.id("s", self.sessions)
        delinquent = [
            r
            for r in self.rdrs.values()
            if r.overdue_from is not None
            and r.overdue_from < self.now
            and r.open_at is None
            and r.card_status == "active"
            and r.status == "active"
        ]
        if delinquent and s.status == "online" and self.rng.random() < 0.5:
            r = self.rng.choice(delinquent)
            expect = "payment_overdue"
            yield Planned(
                c.AuthorizeCard(
                    occurred_at=self.tick(), station_id=s.id, rfid_code=r.card, session_id=sid
                ),
                expect=expect,
            )
        else:
            yield Planned(
                c.AuthorizeCard(
                    occurred_at=self.tick(),
                    station_id=s.id,
                    rfid_code=f"{self.prefix}nope{self.sessions}",
                    session_id=sid,
                ),
                expect="card_unknown",
            )
        self.count("refusal")

    def abandon(self) -> Iterator[Planned]:
        r, s = self._rider_for_swap(), self._station_for_swap()
        if r is None or s is None:
            return
        self.sessions += 1
        at = self.tick()
        r.open_at = (s.id, at)
        yield Planned(
            c.AuthorizeCard(
                occurred_at=at,
                station_id=s.id,
                rfid_code=r.card,
                session_id=self.id("s", self.sessions),
            )
        )
        self.timeouts.append((at + timedelta(seconds=125), r.id))
        self.count("abandoned")

    def _due_timeouts(self) -> Iterator[Planned]:
        due = [(t, rid) for t, rid in self.timeouts if t <= self.now]
        if not due:
            return
        self.timeouts = [(t, rid) for t, rid in self.timeouts if t > self.now]
        for _t, rid in due:
            r = self.rdrs[rid]
            if r.open_at is None:
                continue
            station_id = r.open_at[0]
            r.open_at = None
            yield Planned(c.TimeOutSessions(occurred_at=self.tick(), station_id=station_id))

    def restock(self) -> Iterator[Planned]:
        s = self.rng.choice(list(self.stns.values()))
        empty = [n for n, b in enumerate(s.slots, start=1) if b is None]
        spare = [b for b in self.bats.values() if b.where == ("warehouse",) and b.grade == "ok"]
        if len(empty) > 1 and spare:
            b = spare[0]
            b.where = ("slot", s.id, empty[-1])
            s.slots[empty[-1] - 1] = b.id
            b.soc = 100.0
            yield Planned(
                c.DockBattery(
                    occurred_at=self.tick(),
                    station_id=s.id,
                    slot=empty[-1],
                    battery_id=b.id,
                    soc=b.soc,
                    soh=b.soh,
                )
            )
            self.count("restock")
            return
        docked = [(n, self.bats[b]) for n, b in enumerate(s.slots, start=1) if b is not None]
        if len(docked) > 2:
            n, b = min(docked, key=lambda item: item[1].soh)
            s.slots[n - 1] = None
            b.where = ("warehouse",)
            yield Planned(
                c.RemoveBattery(
                    occurred_at=self.tick(),
                    station_id=s.id,
                    slot=n,
                    battery_id=b.id,
                    reason="maintenance",
                )
            )
            self.count("removed")

    def correction(self) -> Iterator[Planned]:
        if not self.completed:
            return
        sid, _when, soc = self.rng.choice(self.completed)
        new_soc = max(0.0, round(soc - self.rng.uniform(1, 5), 1))
        yield Planned(
            c.CorrectSwap(
                occurred_at=self.tick(),
                session_id=sid,
                returned_soc=new_soc,
                note="station recalibrated",
            )
        )
        self.count("correction")

    def rejected(self) -> Iterator[Planned]:
        from domain.rejection import RecordRejectedMessage

        s = self.rng.choice(list(self.stns.values()))
        n = self.counts.get("rejected", 0) + 1
        at = self.tick()
        yield Planned(
            RecordRejectedMessage(
                occurred_at=at,
                rejection_id=self.id("rej", n),
                reason="invalid_json",
                message="Payload is not JSON",
                topic=f"bss/{s.id}/swap/initiate",
                station_id=s.id,
                payload_b64="e2JhZCBqc29u",
                payload_size=9,
                received_at=at,
            )
        )
        self.count("rejected")

    def admin(self) -> Iterator[Planned]:
        roll = self.rng.random()
        r = self.rdrs[self.rng.choice(list(self.rdrs))]
        if roll < 0.4 and r.open_at is None:
            if r.card_status == "active":
                r.card_status = "blocked"
                yield Planned(
                    c.BlockCard(occurred_at=self.tick(), rfid_code=r.card, reason="reported")
                )
            else:
                r.card_status = "active"
                yield Planned(c.UnblockCard(occurred_at=self.tick(), rfid_code=r.card))
        elif roll < 0.7 and r.open_at is None:
            if r.status == "active":
                r.status = "suspended"
                yield Planned(
                    c.SuspendRider(occurred_at=self.tick(), rider_id=r.id, reason="audit")
                )
            else:
                r.status = "active"
                yield Planned(c.ReactivateRider(occurred_at=self.tick(), rider_id=r.id))
        else:
            yield Planned(
                c.UpdateRider(
                    occurred_at=self.tick(),
                    rider_id=r.id,
                    personal={"phone": f"+49 {self.rng.randint(100, 999)}"},
                )
            )
        self.count("admin")

    def _month_end(self) -> Iterator[Planned]:
        month = self.now.strftime("%Y-%m")
        if month == self.month:
            return
        closing, self.month = self.month, month
        for r in self.rdrs.values():
            pays = self.rng.random() > 0.05

            def settle(
                outcome: Outcome, r: Rdr = r, pays: bool = pays, closing: str = closing
            ) -> None:
                amount = Decimal(outcome.data["amount_due"])
                if amount <= 0:
                    return
                if not pays:
                    due = datetime.fromisoformat(outcome.data["due_at"])
                    r.overdue_from = due + timedelta(days=15, seconds=1)
                    return
                self.pending.append(
                    Planned(
                        c.RecordPayment(
                            occurred_at=self.tick(),
                            rider_id=r.id,
                            month=closing,
                            amount=amount,
                            reference=f"pay-{r.id}-{closing}",
                        )
                    )
                )

            if not pays:
                r.delinquent = True  # from now on never planned for a swap
            yield Planned(
                c.CloseBillingPeriod(occurred_at=self.tick(), rider_id=r.id, month=closing),
                then=settle,
            )
        self.count("month_end")


def drive(
    fleet: Fleet,
    execute: Callable[[list[c.Command]], list[Any]],
    planned: Iterator[Planned],
    *,
    commands: int,
    batch: int = 1,
) -> int:
    """Send ``commands`` planned commands through ``execute`` (a list of commands -> a list of
    ledger Results) in batches; check each outcome; return how many were sent."""
    sent = 0
    while sent < commands:
        chunk: list[Planned] = []
        for item in planned:
            chunk.append(item)
            if len(chunk) >= min(batch, commands - sent):
                break
        if not chunk:
            break
        results = execute([p.command for p in chunk])
        for item, result in zip(chunk, results, strict=True):
            check(item, result)
        sent += len(chunk)
    return sent


def check(item: Planned, result: Any) -> None:
    error = getattr(result, "error", None)
    if error is not None:
        raise Mismatch(f"{type(item.command).__name__} failed: {error!r} ({item.command})")
    outcome: Outcome = getattr(result, "outcome", result)
    reason = None if outcome.ok else outcome.reason
    if reason != item.expect:
        raise Mismatch(
            f"{type(item.command).__name__}: expected {item.expect or 'accepted'}, "
            f"got {reason or 'accepted'} {outcome.data} ({item.command})"
        )
    if item.then is not None:
        item.then(outcome)
