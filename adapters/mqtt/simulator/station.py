"""One simulated station: the kiosk's conversation with the ledger, its slots, its chargers.

A visit goes as on the real kiosk (PROTOCOL.md):

    card tapped → auth request → reply
      → initiate with the returned battery's reading
          v2: wait for swap/decision (the ledger picked and reserved a battery)
          v1: the station checks SOH itself (swap/refused below 70 %), listens briefly for a
              swap/error, then picks the battery to issue from its own view of its slots
      → swap/activity or swap/result → swap/confirmation (or swap/error)

A request whose reply does not come within ``reply_timeout`` is sent again, byte for byte,
as v1 firmware does when its reply was lost. v2 stations also send heartbeats (their MQTT
will is a retained ``offline``) and health readings of docked batteries while they charge.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
import paho.mqtt.client as mqtt

from adapters.mqtt.simulator.reactor import Timer
from adapters.mqtt.simulator.world import (
    MIN_ISSUE_SOC,
    MIN_RETURN_SOH,
    SimBattery,
    SimRider,
    StationSpec,
)
from domain.reasons import Reason

if TYPE_CHECKING:
    from adapters.mqtt.simulator.fleet import Simulator

log = logging.getLogger(__name__)

RETIRE_SOH = 60.0  # rule 10's default: under it a refused battery is taken back
REFUSALS = frozenset(r.value for r in Reason) - {"session_unknown", "session_timed_out"}
CHARGE_TICK = 1.0


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class Visit:
    """A rider at the kiosk; the draws that make it (SOC, heat, faults) come from the seed."""

    number: int
    rider: SimRider | None
    rfid: str
    return_soc: float
    heat: float  # 0..1: how hot the returned battery is, relative to its nature
    drop_step: str | None = None  # with faults: this step's reply is "lost" once
    duplicate_step: str | None = None  # with faults: this step's request is published twice
    state: str = "queued"
    session_id: str | None = None
    user_id: Any = None
    battery_in: str | None = None
    battery_out: str | None = None
    slot_in: int | None = None
    reading: dict[str, float] = field(default_factory=dict)


@dataclass
class Pending:
    """A request waiting for its reply."""

    step: str
    topic: str
    payload: bytes
    expects: frozenset[str]
    message_id: str | None
    sent_at: float
    tries: int = 1
    timer: Timer | None = None


class StationAgent:
    def __init__(self, sim: Simulator, spec: StationSpec, slots: dict[int, str | None]) -> None:
        self.sim = sim
        self.spec = spec
        self.id = spec.station_id
        self.v2 = spec.dialect == "v2"
        self.prefix = f"bss/{self.id}/"
        self.slots = slots
        self.auth_reply = spec.auth_topic.replace("request", "response")
        self.queue: deque[Visit] = deque()
        self.visit: Visit | None = None
        self.pending: Pending | None = None
        self.ready = False
        self.stopping = False
        self._counter = 0
        self._tag = sim.run_tag
        self._last_charge = time.monotonic()
        self.client = sim.make_client(self.id)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        if self.v2:
            will = {"status": "offline", "timestamp": now_iso()}
            self.client.will_set(self.prefix + "station/status", orjson.dumps(will), 1, True)

    # --- connection -------------------------------------------------------------------------

    def connect(self) -> None:
        cfg = self.sim.config
        self.client.connect(cfg.host, cfg.port, cfg.keepalive)

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if rc.is_failure:
            self.sim.connect_failed(self, str(rc))
            return
        if self.v2:
            topics = [self.auth_reply, "swap/decision", "swap/confirmation", "swap/error", "error"]
            client.subscribe([(self.prefix + t, 1) for t in topics])
            self._status("online")
        else:
            # v1 firmware subscribes at QoS 0 and starts talking before its SUBACK arrives.
            topics = [self.auth_reply, "swap/confirmation", "swap/error"]
            client.subscribe([(self.prefix + t, 0) for t in topics])
            self._became_ready()

    def _on_subscribe(self, *_args: Any) -> None:
        if self.v2:
            self._became_ready()

    def _became_ready(self) -> None:
        first = not self.ready
        self.ready = True
        if first:
            self.sim.station_ready(self)
            self.sim.reactor.call_later(CHARGE_TICK * self.sim.jitter(), self._charge_tick)
            if self.v2:
                # The first heartbeat comes soon after the birth message: a retained offline
                # of an earlier run may still be on its way to the ledger.
                self.sim.reactor.call_later(2.0 * self.sim.jitter(), self._heartbeat)
                self._schedule_telemetry()

    def _on_disconnect(self, client: mqtt.Client, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if self.stopping:
            return
        log.warning("station %s lost its connection (%s); reconnecting", self.id, rc)
        self.sim.reactor.call_later(1.0, self._reconnect)

    def _reconnect(self) -> None:
        if self.stopping:
            return
        try:
            self.client.reconnect()
        except OSError:
            self.sim.reactor.call_later(2.0, self._reconnect)

    def shutdown(self) -> None:
        """Say goodbye like a station switched off for the night (v2: retained offline)."""
        self.stopping = True
        if self.pending is not None and self.pending.timer is not None:
            self.pending.timer.cancel()
        if self.v2 and self.client.is_connected():
            self._status("offline")
        self.client.disconnect()

    # --- publishing -------------------------------------------------------------------------

    def _message_id(self) -> str:
        self._counter += 1
        return f"{self._tag}-{self._counter}"

    def _publish(self, suffix: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(self.prefix + suffix, payload, qos=1, retain=retain)
        self.sim.summary.published += 1

    def _request(self, step: str, suffix: str, body: dict[str, Any], expects: set[str]) -> None:
        visit = self.visit
        assert visit is not None
        message_id = body.get("message_id")
        payload = orjson.dumps(body)
        self.pending = Pending(step, suffix, payload, frozenset(expects), message_id, 0.0)
        self._send_pending()
        if visit.duplicate_step == step:
            self._publish(suffix, payload)  # the same bytes again: a duplicate publication
            self.sim.summary.duplicates_sent += 1

    def _send_pending(self) -> None:
        pending = self.pending
        assert pending is not None
        pending.sent_at = time.monotonic()
        self._publish(pending.topic, pending.payload)
        timeout = self.sim.config.reply_timeout
        if pending.step == "initiate_v1":
            timeout = self.sim.config.v1_initiate_wait
        pending.timer = self.sim.reactor.call_later(timeout, self._timed_out, pending)

    def _timed_out(self, pending: Pending) -> None:
        if pending is not self.pending or self.stopping:
            return
        if pending.step == "initiate_v1":  # no swap/error: the initiate was accepted
            self.pending = None
            self._complete()
            return
        if pending.tries > self.sim.config.max_retries:
            self._finish("error", "no_reply")
            return
        pending.tries += 1
        self.sim.summary.resent += 1
        self._send_pending()

    def _status(self, status: str) -> None:
        slots = [
            {"slot": n, "battery_id": b, "state": self._slot_state(b)}
            for n, b in sorted(self.slots.items())
        ]
        body = {"status": status, "slots": slots, "timestamp": now_iso()}
        self._publish("station/status", orjson.dumps(body), retain=True)
        self.sim.summary.heartbeats += 1

    def _slot_state(self, battery_id: str | None) -> str:
        if battery_id is None:
            return "empty"
        battery = self.sim.batteries[battery_id]
        if battery.quarantined:
            return "faulty"
        return "ready" if battery.soc >= MIN_ISSUE_SOC else "charging"

    # --- replies ----------------------------------------------------------------------------

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.sim.summary.received += 1
        suffix = message.topic[len(self.prefix) :]
        pending = self.pending
        if pending is None or suffix not in pending.expects:
            self.sim.summary.stale_replies += 1
            return
        try:
            data = orjson.loads(message.payload)
        except orjson.JSONDecodeError:
            self._finish("error", "unreadable_reply")
            return
        reply_to = data.get("in_reply_to")
        if self.v2 and reply_to is not None and reply_to != pending.message_id:
            self.sim.summary.stale_replies += 1  # the answer to an earlier copy
            return
        visit = self.visit
        assert visit is not None
        if visit.drop_step == pending.step:
            visit.drop_step = None  # lost once; the timeout sends the request again
            self.sim.summary.replies_dropped += 1
            return
        if pending.timer is not None:
            pending.timer.cancel()
        self.pending = None
        if pending.step != "initiate_v1":
            self.sim.summary.latency[_latency_kind(pending.step)].add(
                time.monotonic() - pending.sent_at
            )
        if suffix == "error":
            self._finish("error", str(data.get("error") or "rejected"))
        elif suffix == "swap/error":
            self._swap_error(data)
        elif pending.step == "auth":
            self._auth_reply(data)
        elif pending.step == "decision":
            self._decision(data)
        else:
            self._confirmed(data)

    # --- a visit, step by step ---------------------------------------------------------------

    def enqueue(self, visit: Visit) -> None:
        self.queue.append(visit)
        if self.visit is None and self.ready:
            self._next()

    def _next(self) -> None:
        if self.visit is not None or not self.queue or self.stopping:
            return
        visit = self.visit = self.queue.popleft()
        visit.state = "auth"
        body: dict[str, Any] = {"rfid": visit.rfid, "timestamp": now_iso()}
        if self.v2:
            body["message_id"] = self._message_id()
        self._request("auth", self.spec.auth_topic, body, {self.auth_reply})

    def _auth_reply(self, data: dict[str, Any]) -> None:
        visit = self.visit
        assert visit is not None
        if data.get("status") != "success":
            self._finish("refused", str(data.get("reason") or "auth_failure"))
            return
        visit.session_id = data.get("sessionId") or data.get("session_id")
        visit.user_id = data.get("user_id")
        rider = visit.rider
        if rider is None or not rider.batteries:
            self._finish("error", "unexpected_auth")  # an unknown card was let in
            return
        self._initiate(rider.batteries[0])

    def _initiate(self, battery_id: str) -> None:
        visit = self.visit
        assert visit is not None
        battery = self.sim.batteries[battery_id]
        visit.battery_in = battery_id
        visit.reading = self._returned_reading(battery, visit)
        visit.state = "initiate"
        if not self.v2 and battery.soh < MIN_RETURN_SOH:
            self._refuse_locally(visit, battery)
            return
        body: dict[str, Any] = {
            "user_id": visit.user_id,
            "battery_in_id": battery_id,
            "battery_in_health_status": "accepted",
            **visit.reading,
            "timestamp": now_iso(),
        }
        if self.v2:
            del body["battery_in_health_status"]
            visit.slot_in = self._return_slot(None)
            body.update(message_id=self._message_id(), session_id=visit.session_id)
            if visit.slot_in is not None:
                body["slot_in"] = visit.slot_in
            self._request("decision", "swap/initiate", body, {"swap/decision", "swap/error"})
        else:
            self._request("initiate_v1", "swap/initiate", body, {"swap/error"})

    def _returned_reading(self, battery: SimBattery, visit: Visit) -> dict[str, float]:
        soc = round(visit.return_soc, 1)
        hot = (battery.runs_hot and visit.heat < 0.7) or visit.heat > 0.99
        temperature = 56 + visit.heat * 10 if hot else 26 + visit.heat * 16
        return {
            "soc": soc,
            "voltage": round(60 + 24 * soc / 100, 2),
            "temperature": round(temperature, 1),
            "soh": round(battery.soh, 1),
        }

    def _refuse_locally(self, visit: Visit, battery: SimBattery) -> None:
        """v1 firmware refuses a worn battery itself and tells the ledger (no reply)."""
        body = {
            "user_id": visit.user_id,
            "battery_id": battery.battery_id,
            "status": "rejected",
            "reason": "Battery health below threshold",
            "soc": visit.reading["soc"],
            "soh": visit.reading["soh"],
            "temperature": visit.reading["temperature"],
            "timestamp": now_iso(),
        }
        self._publish("swap/refused", orjson.dumps(body))
        if visit.duplicate_step == "initiate":
            self._publish("swap/refused", orjson.dumps(body))
            self.sim.summary.duplicates_sent += 1
        self._finish("refused", Reason.BATTERY_HEALTH_LOW.value)

    def _decision(self, data: dict[str, Any]) -> None:
        visit = self.visit
        assert visit is not None
        if data.get("status") != "accepted":
            reason = str(data.get("reason") or "refused")
            if reason == Reason.BATTERY_HEALTH_LOW.value:
                self._maybe_taken_back(visit)
            self._finish("refused", reason)
            return
        visit.battery_out = data.get("battery_out_id")
        if visit.battery_out is None or visit.battery_out not in self.slots.values():
            self._finish("error", "view_mismatch")
            return
        self._complete()

    def _maybe_taken_back(self, visit: Visit) -> None:
        """Rule 10: under the retirement SOH the ledger took the battery into a free slot."""
        battery = self.sim.batteries[visit.battery_in or ""]
        slot = self._return_slot(visit.slot_in)
        if battery.soh < RETIRE_SOH and slot is not None and visit.rider is not None:
            self.slots[slot] = battery.battery_id
            battery.quarantined = True
            visit.rider.batteries.remove(battery.battery_id)

    def _complete(self) -> None:
        visit = self.visit
        assert visit is not None
        assert visit.battery_in is not None
        if visit.battery_out is None:
            visit.battery_out = self._pick()
            if visit.battery_out is None:
                self._finish("refused", Reason.NO_BATTERY_AVAILABLE.value)
                return
        out = self.sim.batteries[visit.battery_out]
        leaving = self._slot_of(visit.battery_out)
        visit.slot_in = self._return_slot(visit.slot_in, leaving)
        visit.state = "completion"
        returned = {"soc": visit.reading["soc"], "soh": visit.reading["soh"]}
        issued = {"soc": round(out.soc, 1), "soh": round(out.soh, 1)}
        if self.v2:
            body: dict[str, Any] = {
                "battery_in_id": visit.battery_in,
                "battery_out_id": visit.battery_out,
                "user_id": visit.user_id,
                "battery_in_data": returned,
                "battery_out_data": issued,
                "status": "completed",
                "timestamp": now_iso(),
                "message_id": self._message_id(),
                "session_id": visit.session_id,
                "slot_in": visit.slot_in,
            }
            suffix = "swap/activity"
        elif self.spec.completion_topic == "swap/activity":
            body = {
                "battery_in_id": visit.battery_in,
                "battery_out_id": visit.battery_out,
                "user_id": visit.user_id,
                "battery_in_data": returned,
                "battery_out_data": issued,
                "status": "completed",
                "timestamp": now_iso(),
            }
            suffix = "swap/activity"
        else:
            body = {
                "user_id": visit.user_id,
                "battery_in_id": visit.battery_in,
                "battery_out_id": visit.battery_out,
                "timestamp": now_iso(),
                "station_id": int(self.id) if self.id.isdigit() else self.id,
                "status": "success",
            }
            suffix = "swap/result"
        self._request("completion", suffix, body, {"swap/confirmation", "swap/error"})

    def _confirmed(self, _data: dict[str, Any]) -> None:
        visit = self.visit
        assert visit is not None
        assert visit.battery_in
        assert visit.battery_out
        leaving = self._slot_of(visit.battery_out)
        if leaving is not None:
            self.slots[leaving] = None
        slot = self._return_slot(visit.slot_in, leaving)
        if slot is not None:
            self.slots[slot] = visit.battery_in
        returned = self.sim.batteries[visit.battery_in]
        returned.soc = visit.reading["soc"]
        returned.cycle_count += 1
        returned.soh = max(returned.soh - 0.02, 0.0)
        if visit.rider is not None:
            visit.rider.batteries = [visit.battery_out]
        self._finish("completed", None)

    def _swap_error(self, data: dict[str, Any]) -> None:
        reason = str(data.get("error") or "swap_error")
        visit = self.visit
        assert visit is not None
        if reason == Reason.BATTERY_HEALTH_LOW.value and visit.state == "initiate":
            self._maybe_taken_back(visit)
        self._finish("refused" if reason in REFUSALS else "error", reason)

    def _finish(self, outcome: str, reason: str | None) -> None:
        visit = self.visit
        assert visit is not None
        if self.pending is not None and self.pending.timer is not None:
            self.pending.timer.cancel()
        self.pending = None
        self.visit = None
        visit.state = outcome
        self.sim.visit_finished(self, visit, outcome, reason)
        self._next()

    # --- slots ------------------------------------------------------------------------------

    def _slot_of(self, battery_id: str) -> int | None:
        for number, held in self.slots.items():
            if held == battery_id:
                return number
        return None

    def _return_slot(self, preferred: int | None, leaving: int | None = None) -> int | None:
        """The ledger's rule: the named slot if empty, else the lowest empty slot, else the
        slot the issued battery leaves."""
        empty = [n for n, b in sorted(self.slots.items()) if b is None]
        if preferred is not None and (preferred in empty or preferred == leaving):
            return preferred
        return empty[0] if empty else leaving

    def _pick(self) -> str | None:
        """v1: the station picks the battery to issue from its own view (rule 13's order)."""
        candidates = [(self.sim.batteries[b], n) for n, b in self.slots.items() if b is not None]
        ok = [(b, n) for b, n in candidates if b.issuable]
        if not ok:
            return None
        best = min(ok, key=lambda bn: (-bn[0].soc, -bn[0].soh, bn[0].cycle_count, bn[1]))
        return best[0].battery_id

    # --- chargers, telemetry, heartbeats ----------------------------------------------------

    def _charge_tick(self) -> None:
        if self.stopping:
            return
        now = time.monotonic()
        elapsed, self._last_charge = now - self._last_charge, now
        rate = self.sim.config.charge_rate
        for number, battery_id in self.slots.items():
            if battery_id is None:
                continue
            battery = self.sim.batteries[battery_id]
            if battery.quarantined or battery.soc >= 100:
                continue
            before = battery.soc
            step = rate * elapsed * (1.0 if before < MIN_ISSUE_SOC else 0.5)
            battery.soc = min(100.0, before + step)
            if self.v2 and before < MIN_ISSUE_SOC <= battery.soc:
                self._reading(number, battery)  # the charger reports "ready" at once
        self.sim.reactor.call_later(CHARGE_TICK, self._charge_tick)

    def _schedule_telemetry(self) -> None:
        interval = self.sim.config.telemetry_interval
        if interval > 0:
            self.sim.reactor.call_later(interval * self.sim.jitter(), self._telemetry)

    def _telemetry(self) -> None:
        if self.stopping:
            return
        for number, battery_id in sorted(self.slots.items()):
            if battery_id is not None:
                self._reading(number, self.sim.batteries[battery_id])
        self._schedule_telemetry()

    def _reading(self, slot: int, battery: SimBattery) -> None:
        rng = self.sim.noise
        cell = (60 + 24 * battery.soc / 100) / 24
        body = {
            "battery_id": battery.battery_id,
            "slot": slot,
            "soc": round(battery.soc, 1),
            "soh": round(battery.soh, 1),
            "pack_voltage": round(cell * 24, 2),
            "cell_voltage_min": round(cell - rng.uniform(0.005, 0.03), 3),
            "cell_voltage_max": round(cell + rng.uniform(0.005, 0.03), 3),
            "max_temp": round(rng.uniform(46, 58) if battery.runs_hot else rng.uniform(27, 40), 1),
            "ambient_temp": round(rng.uniform(21, 29), 1),
            "humidity": round(rng.uniform(40, 80), 1),
            "internal_resist": round(18 + (100 - battery.soh) * 0.9, 2),
            "cycle_count": battery.cycle_count,
            "timestamp": now_iso(),
            "message_id": self._message_id(),
        }
        self._publish("battery/telemetry", orjson.dumps(body))
        self.sim.summary.telemetry += 1

    def _heartbeat(self) -> None:
        if self.stopping:
            return
        if self.client.is_connected():
            self._status("online")
        self.sim.reactor.call_later(self.sim.config.heartbeat_interval, self._heartbeat)


def _latency_kind(step: str) -> str:
    return {"auth": "auth", "decision": "decision"}.get(step, "completion")
