"""``Simulator``: registers a fleet, connects its stations, sends riders to them, counts.

One thread does everything (a :class:`~adapters.mqtt.simulator.reactor.Reactor` drives every
station's MQTT client and every timer), so the run is cheap and the order of draws from the
seeded generators does not depend on thread scheduling. Riders arrive as a Poisson process
at ``rate`` visits per second (``rate=0``: every station serves its next rider as soon as it
is free, which is how the benchmark measures throughput).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from adapters.mqtt.simulator.config import SimulatorConfig
from adapters.mqtt.simulator.reactor import Reactor
from adapters.mqtt.simulator.station import StationAgent, Visit
from adapters.mqtt.simulator.summary import Summary
from adapters.mqtt.simulator.world import (
    Fleet,
    SimBattery,
    SimRider,
    World,
    generate,
    load,
    registered_riders,
)
from adapters.mqtt.simulator.world import register as register_world
from ledger.service import Ledger

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0
STEPS = ("auth", "decision", "completion")


class SimulatorError(RuntimeError):
    """Raised when the fleet cannot start: no broker, refused logins, missing passwords."""


class Simulator:
    """A fleet of stations over MQTT. ``Simulator(config).run() -> Summary``.

    ``ledger``: where to register the fleet (default: open ``config.database_url``).
    ``on_tick``: called about twice a second in the simulator's thread (live progress).
    ``stop()`` may be called from any thread (or a signal handler).
    """

    def __init__(
        self,
        config: SimulatorConfig,
        *,
        ledger: Ledger | None = None,
        on_tick: Callable[[Simulator], None] | None = None,
    ) -> None:
        config.validate()
        self.config = config
        self._ledger = ledger
        self.on_tick = on_tick
        self.summary = Summary()
        self.reactor = Reactor()
        self.run_tag = f"r{time.time_ns() // 1_000_000:x}"  # message ids stay unique per run
        self.noise = random.Random(f"bss-simulator:{config.seed}:noise")
        self._arrivals = random.Random(f"bss-simulator:{config.seed}:arrivals")
        self._stop = threading.Event()
        self.world: World | None = None
        self.fleet: Fleet | None = None
        self.batteries: dict[str, SimBattery] = {}
        self.riders: list[SimRider] = []
        self.agents: list[StationAgent] = []
        self._ready = 0
        self._failures: list[str] = []
        self._visits = 0
        self._started_at: float | None = None
        self._finished_at: float | None = None
        self._last_completed: list[tuple[float, int]] = []

    # --- preparation ------------------------------------------------------------------------

    def prepare(self) -> Fleet:
        """Generate the fleet from the seed, register it (idempotently), read it back."""
        if self.fleet is not None:
            return self.fleet
        world = self.world = generate(self.config)
        ledger, store = self._ledger, None
        if ledger is None:
            from adapters.store import open_store
            from ledger.settings import get_settings

            store = open_store(self.config.database_url or get_settings().database_url, init=True)
            ledger = Ledger(store)
        try:
            if self.config.register:
                report, rider_ids = register_world(world, ledger)
                self.summary.registered = report.created
                self.summary.already_registered = report.existing
                for error in report.errors:
                    log.warning("registration: %s", error)
            else:
                rider_ids = registered_riders(world, ledger)
            self.fleet = load(world, ledger, rider_ids)
        finally:
            if store is not None:
                store.close()
        self.batteries = self.fleet.batteries
        self.riders = self.fleet.riders
        return self.fleet

    # --- MQTT ----------------------------------------------------------------------------------

    def make_client(self, station_id: str) -> mqtt.Client:
        cfg = self.config
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"bss-station-{station_id}",
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        if cfg.passwords:
            password = cfg.passwords.get(station_id)
            if password is None:
                raise SimulatorError(f"no MQTT password for station {station_id}")
            client.username_pw_set(station_id, password)
        if cfg.tls_ca_file is not None or cfg.tls_cert_file is not None:
            client.tls_set(
                ca_certs=str(cfg.tls_ca_file) if cfg.tls_ca_file else None,
                certfile=str(cfg.tls_cert_file) if cfg.tls_cert_file else None,
                keyfile=str(cfg.tls_key_file) if cfg.tls_key_file else None,
            )
        client.max_inflight_messages_set(100)
        self.reactor.attach(client)
        return client

    def jitter(self) -> float:
        """Spread periodic work of many stations over its period (0.1 to 1.0)."""
        return self.noise.uniform(0.1, 1.0)

    def station_ready(self, agent: StationAgent) -> None:
        self._ready += 1

    def connect_failed(self, agent: StationAgent, reason: str) -> None:
        self._failures.append(f"station {agent.id}: {reason}")

    # --- the run ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Start no more visits; let those in progress finish (``drain_after``), then stop."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self) -> Summary:
        fleet = self.prepare()
        assert self.world is not None
        try:
            self._connect(fleet)
            self._started_at = time.monotonic()
            if self.config.rate > 0:
                self.reactor.call_later(0, self._arrive)
            else:
                for agent in self.agents:
                    self._serve_next(agent)
            self._tick()
            self._loop()
        finally:
            self._shutdown()
        return self.summary

    def _connect(self, fleet: Fleet) -> None:
        assert self.world is not None
        for spec in self.world.stations:
            agent = StationAgent(self, spec, fleet.slots[spec.station_id])
            self.agents.append(agent)
            self.summary.dialects[spec.dialect] += 1
        self.summary.stations = len(self.agents)
        for agent in self.agents:
            try:
                agent.connect()
            except OSError as error:
                raise SimulatorError(
                    f"cannot reach the MQTT broker at {self.config.host}:{self.config.port}: "
                    f"{error}"
                ) from error
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while self._ready < len(self.agents) and not self._failures:
            if time.monotonic() > deadline:
                raise SimulatorError(
                    f"{len(self.agents) - self._ready} station(s) not connected after "
                    f"{CONNECT_TIMEOUT:.0f} s"
                )
            self._run_once()
        if self._failures:
            raise SimulatorError("the broker refused: " + "; ".join(self._failures[:5]))

    def _run_once(self) -> None:
        try:
            self.reactor.run_once()
        except KeyboardInterrupt:
            if self.stopping:
                raise
            self.stop()

    def _loop(self) -> None:
        quota = self.config.swaps
        drain_deadline: float | None = None
        while True:
            done = quota and self._visits >= quota and self.summary.in_progress == 0
            if done:
                break
            if self.stopping:
                if drain_deadline is None:
                    drain_deadline = time.monotonic() + self.config.drain_after
                if self.summary.in_progress == 0 or time.monotonic() > drain_deadline:
                    break
            self._run_once()
        self._finished_at = time.monotonic()

    def _shutdown(self) -> None:
        if self._started_at is not None:
            end = self._finished_at or time.monotonic()
            self.summary.duration_s = end - self._started_at
        for agent in self.agents:
            agent.shutdown()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and any(
            a.client.want_write() or a.client.is_connected() for a in self.agents
        ):
            try:
                self.reactor.run_once(0.05)
            except KeyboardInterrupt:
                break
        self.reactor.close()
        if self.on_tick is not None:
            self.on_tick(self)

    def _tick(self) -> None:
        now = time.monotonic()
        self._last_completed.append((now, self.summary.completed))
        while self._last_completed and now - self._last_completed[0][0] > 5.0:
            self._last_completed.pop(0)
        if self.on_tick is not None:
            self.on_tick(self)
        self.reactor.call_later(0.5, self._tick)

    def recent_rate(self) -> float:
        """Completed swaps per second over the last few seconds."""
        if len(self._last_completed) < 2:
            return 0.0
        (t0, c0), (t1, c1) = self._last_completed[0], self._last_completed[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0

    # --- riders ------------------------------------------------------------------------------

    def _quota_left(self) -> bool:
        return not self.stopping and (not self.config.swaps or self._visits < self.config.swaps)

    def _arrive(self) -> None:
        """Open loop: one rider arrives at a station; the next arrival is scheduled."""
        if not self._quota_left():
            return
        rng = self._arrivals
        agent = rng.choice(self.agents)
        visit = self._new_visit(rng)
        if visit is not None:
            agent.enqueue(visit)
        self.reactor.call_later(rng.expovariate(self.config.rate), self._arrive)

    def _serve_next(self, agent: StationAgent) -> None:
        """Closed loop: the station's next rider, as soon as it is free."""
        if self._quota_left() and agent.visit is None and not agent.queue:
            visit = self._new_visit(self._arrivals)
            if visit is not None:
                agent.enqueue(visit)
            else:
                self.reactor.call_later(0.05, self._serve_next, agent)

    def _new_visit(self, rng: random.Random) -> Visit | None:
        assert self.world is not None
        cfg = self.config
        return_soc = rng.uniform(5, 40)
        heat = rng.random()
        drop = duplicate = None
        if cfg.faults:
            if rng.random() < cfg.fault_rate:
                drop = rng.choice(STEPS)
            if rng.random() < cfg.fault_rate:
                duplicate = rng.choice(("auth", "decision", "initiate", "completion"))
        if rng.random() < cfg.unknown_cards:
            rider, rfid = None, rng.choice(self.world.unknown_rfids)
        else:
            picked = self._idle_rider(rng.randrange(len(self.riders)))
            if picked is None:
                return None
            rider, rfid = picked, picked.rfid
            rider.busy = True
        self._visits += 1
        self.summary.attempts += 1
        return Visit(self._visits, rider, rfid, return_soc, heat, drop, duplicate)

    def _idle_rider(self, start: int) -> SimRider | None:
        riders = self.riders
        for offset in range(len(riders)):
            rider = riders[(start + offset) % len(riders)]
            if not rider.busy and rider.batteries and rider.rider_id is not None:
                return rider
        return None

    def visit_finished(
        self, agent: StationAgent, visit: Visit, outcome: str, reason: str | None
    ) -> None:
        if visit.rider is not None:
            visit.rider.busy = False
        if outcome == "completed":
            self.summary.completed += 1
        elif outcome == "refused":
            self.summary.refused[reason or "refused"] += 1
        else:
            self.summary.errors[reason or "error"] += 1
            log.debug("station %s visit %d: %s", agent.id, visit.number, reason)
        if self.config.rate <= 0:
            self.reactor.call_later(0, self._serve_next, agent)

    def describe(self) -> dict[str, Any]:
        return {"run_tag": self.run_tag, **self.summary.as_dict()}
