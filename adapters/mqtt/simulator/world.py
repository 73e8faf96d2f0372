"""The simulated fleet: made from the seed, registered through the ledger, read back from it.

``generate`` draws stations, batteries, riders and cards from the seed alone, so the same
seed always describes the same fleet. ``register`` runs the admin commands through
``Ledger.execute_many`` with idempotency keys derived from the seed (``sim:<seed>:...``): a
second run with the same seed registers nothing new. ``load`` then reads where every battery
actually is (a previous run moved them), so a rerun resumes from the ledger's state.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from adapters.mqtt.simulator.config import SimulatorConfig
from domain.base import AlreadyExists
from domain.battery import Battery
from domain.card import Card
from domain.commands import BlockCard, RegisterBattery, RegisterRider, RegisterStation
from domain.rider import Rider
from domain.station import Station
from ledger.service import Ledger, Result

log = logging.getLogger(__name__)

CHUNK = 200
MIN_RETURN_SOH = 70.0  # DOMAIN.md rule 8's default: what a v1 station checks by itself
MIN_ISSUE_SOC = 80.0  # rule 12's default
MIN_ISSUE_SOH = 70.0

FIRST_NAMES = (
    "Ines", "Jean", "Aline", "Eric", "Grace", "Patrick", "Diane", "Olivier", "Claudine",
    "Emmanuel", "Sandrine", "Thierry", "Josiane", "Yves", "Chantal", "Fabrice", "Ange", "Kevin",
)  # fmt: skip
LAST_NAMES = (
    "Uwase", "Mugisha", "Niyonzima", "Habimana", "Ingabire", "Nshimiyimana", "Mukamana",
    "Hakizimana", "Uwimana", "Ndayisaba", "Iradukunda", "Byiringiro",
)  # fmt: skip
PLACES = (
    "Nyabugogo", "Kimironko", "Remera", "Kacyiru", "Nyamirambo", "Kicukiro", "Gikondo",
    "Kanombe", "Gisozi", "Kibagabaga", "Nyarutarama", "Muhima",
)  # fmt: skip
VEHICLES = ("Spiro Ekon", "Ampersand E-moto", "Rwanda Electric Mobility R1", "TVS iQube")


@dataclass
class SimBattery:
    """A battery's physical truth, as the simulated stations see and measure it."""

    battery_id: str
    soh: float
    soc: float
    runs_hot: bool
    cycle_count: int
    capacity_ah: Decimal = Decimal("40")
    quarantined: bool = False

    @property
    def issuable(self) -> bool:
        return not self.quarantined and self.soc >= MIN_ISSUE_SOC and self.soh >= MIN_ISSUE_SOH


@dataclass
class StationSpec:
    station_id: str
    name: str
    location: str
    lat: float
    lng: float
    slot_count: int
    dialect: str  # v1 or v2
    auth_topic: str  # v1 firmware: user/auth/request; the README: auth/request
    completion_topic: str  # swap/activity (firmware) or swap/result (README)
    docked: dict[int, str]  # slot -> battery id at registration


@dataclass
class RiderSpec:
    index: int
    name: str
    email: str
    phone: str
    vehicle: str
    rfid: str
    battery_id: str
    blocked: bool


@dataclass
class SimRider:
    """A rider during the run: who the ledger says they are, and what they hold."""

    index: int
    rider_id: str | None
    rfid: str
    batteries: list[str] = field(default_factory=list)
    card_status: str = "active"
    active: bool = True
    busy: bool = False


@dataclass
class World:
    seed: int
    stations: list[StationSpec]
    batteries: dict[str, SimBattery]
    riders: list[RiderSpec]
    unknown_rfids: list[str]


def _clip(value: float, low: float, high: float) -> float:
    return round(min(max(value, low), high), 1)


def _health(rng: random.Random, config: SimulatorConfig, mean: float) -> float:
    if rng.random() < config.low_soh_batteries:
        return round(rng.uniform(52.0, 69.5), 1)  # some under 60: retired when returned
    return _clip(rng.gauss(mean, 5.0), MIN_RETURN_SOH + 1, 100.0)


def _rfid(rng: random.Random, taken: set[str]) -> str:
    while True:
        code = f"{rng.getrandbits(32):08X}"
        if code not in taken:
            taken.add(code)
            return code


def _dialect(config: SimulatorConfig, index: int) -> str:
    if config.dialect != "mixed":
        return config.dialect
    return "v1" if index % 3 == 0 else "v2"  # a third of the fleet still runs old firmware


def generate(config: SimulatorConfig) -> World:
    """The fleet of this seed (the same every time)."""
    rng = random.Random(f"bss-simulator:{config.seed}")
    batteries: dict[str, SimBattery] = {}
    counter = 0

    def new_battery(docked: bool) -> SimBattery:
        nonlocal counter
        counter += 1
        charged = rng.random() < 0.7
        soc = rng.uniform(85, 100) if charged else rng.uniform(25, 85)
        battery = SimBattery(
            battery_id=f"B{counter:05d}",
            soh=_health(rng, config, 91.0 if docked else 88.0),
            soc=round(soc if docked else rng.uniform(40, 95), 1),
            runs_hot=rng.random() < config.hot_batteries,
            cycle_count=rng.randint(20, 900),
        )
        batteries[battery.battery_id] = battery
        return battery

    stations = []
    for i in range(1, config.stations + 1):
        place = PLACES[(i - 1) % len(PLACES)]
        docked: dict[int, str] = {}
        filled = max(1, min(config.slots - 1, round(config.slots * config.fill)))
        for slot in sorted(rng.sample(range(1, config.slots + 1), filled)):
            docked[slot] = new_battery(True).battery_id
        dialect = _dialect(config, i)
        stations.append(
            StationSpec(
                station_id=f"{config.station_prefix}{i}",
                name=f"{place} {i}",
                location=f"{place}, Kigali",
                lat=round(-1.95 + rng.uniform(-0.06, 0.06), 5),
                lng=round(30.06 + rng.uniform(-0.08, 0.08), 5),
                slot_count=config.slots,
                dialect=dialect,
                auth_topic="user/auth/request" if rng.random() < 0.7 else "auth/request",
                completion_topic="swap/activity" if rng.random() < 0.7 else "swap/result",
                docked=docked,
            )
        )
    taken: set[str] = set()
    riders = []
    for index in range(1, config.riders + 1):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        riders.append(
            RiderSpec(
                index=index,
                name=f"{first} {last}",
                email=f"{first}.{last}.{index}@riders.example".lower(),
                phone=f"+2507{rng.randint(20_000_000, 99_999_999)}",
                vehicle=rng.choice(VEHICLES),
                rfid=_rfid(rng, taken),
                battery_id=new_battery(False).battery_id,
                blocked=rng.random() < config.blocked_cards,
            )
        )
    unknown = [_rfid(rng, taken) for _ in range(50)]
    return World(config.seed, stations, batteries, riders, unknown)


# --- registration -----------------------------------------------------------------------------


@dataclass
class Registration:
    """What ``register`` did: commands that appended events, were already done, or failed."""

    created: int = 0
    existing: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def count(self, result: Result, what: str) -> None:
        if result.error is None:
            if result.duplicate:
                self.existing += 1
            else:
                self.created += 1
        elif isinstance(result.error, AlreadyExists):
            self.existing += 1
        else:
            self.failed += 1
            if len(self.errors) < 10:
                self.errors.append(f"{what}: {result.error}")


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _key(seed: int, *parts: object) -> str:
    return ":".join(["sim", str(seed), *(str(p) for p in parts)])


def register(world: World, ledger: Ledger) -> tuple[Registration, dict[int, str]]:
    """Register the fleet (idempotently); returns what happened and rider index -> rider id."""
    report = Registration()
    now = datetime.now(UTC)
    seed = world.seed
    station_commands = [
        (
            RegisterStation(
                occurred_at=now,
                station_id=s.station_id,
                name=s.name,
                slot_count=s.slot_count,
                location=s.location,
                lat=s.lat,
                lng=s.lng,
            ),
            _key(seed, "station", s.station_id),
        )
        for s in world.stations
    ]
    _run(ledger, station_commands, report, "station")

    docked = {bid: (s.station_id, slot) for s in world.stations for slot, bid in s.docked.items()}
    battery_commands = []
    for battery in world.batteries.values():
        station_id, slot = docked.get(battery.battery_id, (None, None))
        battery_commands.append(
            (
                RegisterBattery(
                    occurred_at=now,
                    battery_id=battery.battery_id,
                    battery_type="LFP 72V",
                    capacity_ah=battery.capacity_ah,
                    manufactured_on="2024-03-01",
                    station_id=station_id,
                    slot=slot,
                    soc=battery.soc,
                    soh=battery.soh,
                ),
                _key(seed, "battery", battery.battery_id),
            )
        )
    _run(ledger, battery_commands, report, "battery")

    rider_ids = _register_riders(world, ledger, report, now)
    blocks = [
        (
            BlockCard(occurred_at=now, rfid_code=r.rfid, status="blocked", reason="simulated"),
            _key(seed, "block", r.rfid),
        )
        for r in world.riders
        if r.blocked and r.index in rider_ids
    ]
    _run(ledger, blocks, report, "card")
    return report, rider_ids


def _stored_rider_ids(ledger: Ledger, keys: dict[int, str]) -> dict[int, str]:
    """Rider ids kept with the registrations' idempotency keys (rider index -> id)."""
    stored = ledger.recorder.get_commands(list(keys.values()))
    found = {}
    for index, key in keys.items():
        if key in stored:
            data = orjson.loads(stored[key][1]).get("data") or {}
            if data.get("rider_id") is not None:
                found[index] = str(data["rider_id"])
    return found


def registered_riders(world: World, ledger: Ledger) -> dict[int, str]:
    """The ids of this seed's riders that an earlier run registered."""
    found: dict[int, str] = {}
    for chunk in _chunks(world.riders):
        found.update(
            _stored_rider_ids(ledger, {r.index: _key(world.seed, "rider", r.index) for r in chunk})
        )
    return found


def _register_riders(
    world: World, ledger: Ledger, report: Registration, now: datetime
) -> dict[int, str]:
    """Rider ids come from the ledger's own counter (numeric, as v1 stations expect); a rider
    registered before keeps the id stored with its idempotency key."""
    rider_ids: dict[int, str] = {}
    for chunk in _chunks(world.riders):
        keys = {r.index: _key(world.seed, "rider", r.index) for r in chunk}
        known = _stored_rider_ids(ledger, keys)
        rider_ids.update(known)
        report.existing += len(known)
        commands = []
        for rider in chunk:
            if rider.index in known:
                continue
            rider_id = str(ledger.next_id("rider"))
            command = RegisterRider(
                occurred_at=now,
                rider_id=rider_id,
                personal={"name": rider.name, "email": rider.email, "phone": rider.phone},
                vehicle=rider.vehicle,
                rfid_code=rider.rfid,
                battery_id=rider.battery_id,
            )
            commands.append((rider.index, command, keys[rider.index]))
        results = ledger.execute_many([(command, key) for _, command, key in commands])
        for (index, command, _), result in zip(commands, results, strict=True):
            report.count(result, f"rider {command.rider_id}")
            if result.error is None:
                rider_ids[index] = command.rider_id
    return rider_ids


def _run(ledger: Ledger, commands: list[tuple[Any, str]], report: Registration, what: str) -> None:
    for chunk in _chunks(commands):
        for result in ledger.execute_many(chunk):
            report.count(result, what)


# --- the ledger's view, read back -------------------------------------------------------------


@dataclass
class Fleet:
    """Where things are when the run starts: the ledger's custody plus the seed's physics."""

    slots: dict[str, dict[int, str | None]]  # station id -> slot -> battery id
    batteries: dict[str, SimBattery]
    riders: list[SimRider]


def load(world: World, ledger: Ledger, rider_ids: dict[int, str]) -> Fleet:
    """Read stations, batteries, riders and cards back from the ledger."""
    ledger.prefetch(Station.stream_id(s.station_id) for s in world.stations)
    ledger.prefetch(Battery.stream_id(b) for b in world.batteries)
    ledger.prefetch(Rider.stream_id(r) for r in rider_ids.values())
    ledger.prefetch(Card.stream_id(r.rfid) for r in world.riders)
    slots: dict[str, dict[int, str | None]] = {}
    batteries = dict(world.batteries)
    for station_spec in world.stations:
        station = ledger.get(Station, station_spec.station_id)
        if station is None:
            empty = range(1, station_spec.slot_count + 1)
            slots[station_spec.station_id] = {n: None for n in empty}
            continue
        slots[station_spec.station_id] = {int(n): b for n, b in station.slots.items()}
    for battery_id, sim in batteries.items():
        known = ledger.get(Battery, battery_id)
        if known is None:
            continue
        sim.soc = known.soc if known.soc is not None else sim.soc
        sim.soh = known.soh if known.soh is not None else sim.soh
        sim.cycle_count = known.cycle_count if known.cycle_count is not None else sim.cycle_count
        sim.quarantined = known.grade != "ok"
    riders = []
    for spec in world.riders:
        rider_id = rider_ids.get(spec.index)
        rider = ledger.get(Rider, rider_id) if rider_id is not None else None
        card = ledger.get(Card, spec.rfid)
        riders.append(
            SimRider(
                index=spec.index,
                rider_id=rider_id,
                rfid=spec.rfid,
                batteries=[b for b in rider.batteries if b in batteries] if rider else [],
                card_status=card.status if card is not None else "unknown",
                active=rider is not None and rider.status == "active",
            )
        )
    return Fleet(slots, batteries, riders)
