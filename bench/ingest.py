"""Benchmark of the MQTT ingest (reported, not asserted): ``python -m bench.ingest``.

(a) Health readings per second, from MQTT QoS 1 publication to committed events (the real
    ``Ingest`` on MariaDB), as a ratio to raw mosquitto QoS 1 throughput (the same publisher
    to one paho subscriber, no database) measured in the same run. Target: at least 50 %.
(b) Complete v2 swaps per second with 100 simulated stations (the simulator in its own
    process, sharing the machine), then the auth reply latency p50/p99 at half that rate.
    Targets: at least 500 swaps/s; p99 at most 50 ms.

By default it starts its own MariaDB and mosquitto (tests/support/services.py) in a temp
folder and stops them at the end; ``--database-url`` / ``--mqtt-host`` / ``--mqtt-port`` use
running ones instead (a new database is created on that server for each part).

The publisher and the simulator run as child processes (``python -m bench.ingest publish``
and ``... simulate``) so they do not share the ingest's interpreter lock.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from bench.server import new_database

ROOT = Path(__file__).resolve().parents[1]
TARGET_RATIO = 0.5
TARGET_SWAPS = 500.0
TARGET_P99_MS = 50.0


# --- servers -----------------------------------------------------------------------------------


@dataclass
class Servers:
    database_url: str  # a server URL; each part makes a database of its own on it
    mqtt_host: str
    mqtt_port: int
    mariadb: Any = None
    mosquitto: Any = None


@contextmanager
def servers(args: argparse.Namespace) -> Iterator[Servers]:
    if args.database_url and args.mqtt_port:
        yield Servers(args.database_url, args.mqtt_host, args.mqtt_port)
        return
    from tests.support.services import MariaDB, Mosquitto

    with tempfile.TemporaryDirectory(prefix="bss-bench-") as folder:
        mariadb = mosquitto = None
        try:
            if not args.database_url:
                mariadb = MariaDB(folder).start()
            if not args.mqtt_port:
                # A queue deep enough for a whole burst: the subscriber falls behind on purpose.
                mosquitto = Mosquitto(folder, "max_queued_messages 2000000").start()
            yield Servers(
                args.database_url or mariadb.url,  # type: ignore[union-attr]
                args.mqtt_host if mosquitto is None else mosquitto.host,
                args.mqtt_port or mosquitto.port,  # type: ignore[union-attr]
                mariadb,
                mosquitto,
            )
        finally:
            for server in (mosquitto, mariadb):
                if server is not None:
                    server.cleanup(remove_data=True) if server is mariadb else server.stop()


def child(*argv: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "bench.ingest", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def child_with_stdin(*argv: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "bench.ingest", *argv],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def child_result(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}): {err.decode()[-2000:]}")
    return dict(json.loads(out.decode().strip().splitlines()[-1]))


# --- (a) health readings ---------------------------------------------------------------------


def publish_main(args: argparse.Namespace) -> None:
    """Child: publish every reading of ``--plan`` at QoS 1 as fast as the broker takes them,
    holding back at 20,000 unacknowledged messages (paho's ids wrap at 65,535)."""
    plan = json.loads(Path(args.plan).read_text())
    tag = secrets.token_hex(3)
    payloads = []
    for n in range(args.count):
        station, battery, slot = plan[n % len(plan)]
        body = {
            "battery_id": battery,
            "slot": slot,
            "soc": 50 + n % 50,
            "soh": 90.5,
            "pack_voltage": 78.1,
            "cell_voltage_min": 3.24,
            "cell_voltage_max": 3.27,
            "max_temp": 31.5,
            "ambient_temp": 24.0,
            "humidity": 55.0,
            "internal_resist": 21.3,
            "cycle_count": 300 + n // len(plan),
            "timestamp": f"2026-01-01T00:{n // 60000 % 60:02d}:{n // 1000 % 60:02d}"
            f".{n % 1000:03d}Z",
            "message_id": f"b{tag}-{n}",
        }
        payloads.append((f"bss/{station}/battery/telemetry", orjson.dumps(body)))
    # One thread, no network thread: publish() writes at once, and PUBACKs are read in
    # between (a network thread woken per message is several times slower).
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{tag}")
    client.max_inflight_messages_set(2000)
    acked = 0

    def on_publish(*_args: Any) -> None:
        nonlocal acked
        acked += 1

    client.on_publish = on_publish
    client.connect(args.host, args.port)
    while not client.is_connected():
        client.loop(0.1)
    t0 = time.monotonic()
    for sent, (topic, payload) in enumerate(payloads, 1):
        client.publish(topic, payload, qos=1)
        if sent % 200 == 0:
            client.loop_read(10_000)
            while sent - acked > 20_000:
                client.loop(0.01)
    while acked < len(payloads):
        client.loop(0.01)
    elapsed = time.monotonic() - t0
    client.disconnect()
    print(json.dumps({"published": len(payloads), "seconds": elapsed}))


def publish(srv: Servers, plan_file: Path, count: int) -> dict[str, Any]:
    pub = child(
        "publish",
        "--host",
        srv.mqtt_host,
        "--port",
        str(srv.mqtt_port),
        "--count",
        str(count),
        "--plan",
        str(plan_file),
    )
    return child_result(pub, 900)


def session_client(srv: Servers, client_id: str) -> mqtt.Client:
    """MQTT 5, persistent session, the ingest's Receive Maximum: the ingest's own settings."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    from adapters.mqtt.ingest import IngestConfig

    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
    )
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 300
    props.ReceiveMaximum = IngestConfig().receive_maximum
    client.connect(srv.mqtt_host, srv.mqtt_port, clean_start=False, properties=props)
    return client


def raw_throughput(srv: Servers, plan_file: Path, count: int) -> dict[str, Any]:
    """The readings wait in a persistent session; one paho subscriber (network thread, as the
    ingest has) then drains them at QoS 1: the consumer measured alone."""
    client_id = f"bench-raw-{secrets.token_hex(3)}"
    subscribed = threading.Event()
    sub = session_client(srv, client_id)
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.loop_start()
    sub.subscribe("bss/+/battery/telemetry", 1)
    subscribed.wait(10)
    sub.disconnect()
    sub.loop_stop()
    published = publish(srv, plan_file, count)

    received = 0
    first = last = 0.0
    done = threading.Event()

    def on_message(*_args: Any) -> None:
        nonlocal received, first, last
        now = time.monotonic()
        if received == 0:
            first = now
        received += 1
        last = now
        if received >= count:
            done.set()

    sub = session_client(srv, client_id)
    sub.on_message = on_message
    sub.loop_start()
    done.wait(600)
    sub.disconnect()
    sub.loop_stop()
    seconds = max(last - first, 1e-9)
    return {
        "messages": received,
        "seconds": seconds,
        "rate": received / seconds,
        "publisher_rate": published["published"] / published["seconds"],
    }


def deciding_process(args: argparse.Namespace, url: str) -> Any:
    """The ingest's deciding half in its own process (as ``bss ingest`` runs it), started, or
    None with ``--deciding thread`` (one process, as ``bss serve`` and ``bss demo`` run it)."""
    if args.deciding != "process":
        return None
    from adapters.mqtt.deciding import DecidingProcess

    return DecidingProcess(url).start()


def readings_throughput(srv: Servers, args: argparse.Namespace) -> dict[str, Any]:
    from adapters.mqtt.ingest import Ingest, IngestConfig
    from adapters.mqtt.simulator import Simulator, SimulatorConfig
    from adapters.store import open_store
    from ledger.service import Ledger

    url = new_database(srv.database_url)
    store = open_store(url, init=True)
    ledger = Ledger(store)
    sim = Simulator(SimulatorConfig(stations=args.stations, riders=1, seed=5), ledger=ledger)
    fleet = sim.prepare()
    plan = [(sid, b, n) for sid, slots in fleet.slots.items() for n, b in slots.items() if b]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump(plan, out)
    plan_file = Path(out.name)
    config = IngestConfig(
        host=srv.mqtt_host,
        port=srv.mqtt_port,
        session_expiry=300,
        client_id=f"bench-ingest-{secrets.token_hex(3)}",
        sweep_interval=0,
    )
    try:
        raw = raw_throughput(srv, plan_file, args.readings)
        Ingest(ledger, config).start().stop()  # the session now exists, and waits
        publish(srv, plan_file, args.readings)
        processor = deciding_process(args, url)
        meter = CpuMeter(srv, processor.pid if processor is not None else None)
        meter.start()
        ingest = Ingest(ledger, config, processor=processor).start()
        try:
            first = None
            deadline = time.monotonic() + 900
            while time.monotonic() < deadline:
                stats = ingest.stats
                if first is None and stats.received:
                    first = time.monotonic()
                if stats.committed >= args.readings:
                    break
                time.sleep(0.005)
            end = time.monotonic()
            cpu = meter.stop()
            stats = ingest.stats
        finally:
            ingest.stop()
        events = store.recorder._query(
            "SELECT COUNT(*) FROM bss_events WHERE topic LIKE %s", ["%HealthRecorded"]
        )[0][0]
    finally:
        plan_file.unlink(missing_ok=True)
        store.close()
    seconds = end - (first or end)
    rate = stats.committed / seconds if seconds > 0 else 0.0
    return {
        "raw": raw,
        "ingest": {
            "messages": stats.committed,
            "events": int(events),
            "seconds": seconds,
            "rate": rate,
            "batches": stats.batches,
            "rejected": stats.rejected,
            "cpu": cpu,
        },
        "ratio": rate / raw["rate"] if raw["rate"] else 0.0,
        "deciding": args.deciding,
    }


# --- (b) swaps ------------------------------------------------------------------------------------


def simulate_main(args: argparse.Namespace) -> None:
    """Child: run the simulator with the JSON options, print its summary as JSON."""
    from adapters.mqtt.simulator import Simulator, SimulatorConfig

    sim = Simulator(SimulatorConfig(**json.loads(args.options)))
    sim.prepare()
    print("ready", flush=True)  # the parent starts counting CPU time now
    cpu = time.process_time()
    summary = sim.run()
    print(json.dumps({**summary.as_dict(), "cpu_s": time.process_time() - cpu}))


def ingest_main(args: argparse.Namespace) -> None:
    """Child: one more ingest process in the shared subscription group, until stdin closes;
    prints its CPU time."""
    from adapters.mqtt.ingest import Ingest, IngestConfig
    from adapters.store import open_store
    from ledger.service import Ledger

    store = open_store(args.database_url)
    config = IngestConfig(
        host=args.host,
        port=args.port,
        client_id=f"bench-ingest-{secrets.token_hex(3)}",
        shared_group=args.group,
        session_expiry=60,
        sweep_interval=0,
    )
    ingest = Ingest(Ledger(store), config).start()
    print("ready", flush=True)
    cpu = time.process_time()
    sys.stdin.read()  # the parent closes it at the end
    used = time.process_time() - cpu
    ingest.stop()
    store.close()
    print(json.dumps({"cpu_s": used}))


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process (Linux /proc), None when unknown."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds used by the ingest (this process), the servers and a child, between
    ``start()`` and ``stop()``: where the machine's two cores went."""

    def __init__(self, srv: Servers, deciding: int | None = None) -> None:
        self.pids = {
            "mosquitto": srv.mosquitto.pid if srv.mosquitto is not None else None,
            "mariadb": srv.mariadb.pid if srv.mariadb is not None else None,
        }
        if deciding is not None:
            self.pids["ingest: deciding process"] = deciding
        self.before: dict[str, float | None] = {}
        self.wall = 0.0

    def start(self) -> None:
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        self.before["ingest"] = time.process_time()
        self.wall = time.monotonic()

    def stop(self) -> dict[str, float | None]:
        used: dict[str, float | None] = {"wall": time.monotonic() - self.wall}
        used["ingest"] = time.process_time() - (self.before["ingest"] or 0.0)
        for name, pid in self.pids.items():
            now, then = cpu_seconds(pid), self.before.get(name)
            used[name] = None if now is None or then is None else now - then
        return used


def run_simulation(
    srv: Servers, options: dict[str, Any], deciding: int | None = None
) -> dict[str, Any]:
    """The simulator in a child process; CPU counted from its first visit to its last."""
    proc = child("simulate", "--options", json.dumps(options))
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        return child_result(proc, 60)  # it failed: raise with its error
    meter = CpuMeter(srv, deciding)
    meter.start()
    result = child_result(proc, 1800)
    result["cpu"] = {**meter.stop(), "simulator": result.pop("cpu_s")}
    return result


def swaps(srv: Servers, args: argparse.Namespace) -> dict[str, Any]:
    from adapters.mqtt.ingest import Ingest, IngestConfig
    from adapters.store import open_store
    from ledger.service import Ledger

    url = new_database(srv.database_url)
    store = open_store(url, init=True)
    ledger = Ledger(store)
    group = f"bench-{secrets.token_hex(3)}" if args.ingest_processes > 1 else None
    processor = deciding_process(args, url)
    ingest = Ingest(
        ledger,
        IngestConfig(
            host=srv.mqtt_host,
            port=srv.mqtt_port,
            client_id=f"bench-ingest-{secrets.token_hex(3)}",
            shared_group=group,
            session_expiry=60,
            sweep_interval=5,
        ),
        processor=processor,
    ).start()
    extra = [
        child_with_stdin(
            "ingest",
            "--database-url",
            url,
            "--host",
            srv.mqtt_host,
            "--port",
            str(srv.mqtt_port),
            "--group",
            str(group),
        )
        for _ in range(args.ingest_processes - 1)
    ]
    for proc in extra:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready", "an extra ingest did not start"
    fleet = {
        "stations": args.stations,
        "riders": args.stations * 20,
        "seed": 9,
        "dialect": "v2",
        "slots": 12,
        "charge_rate": 100.0,
        "blocked_cards": 0.0,
        "unknown_cards": 0.0,
        "low_soh_batteries": 0.0,
        "hot_batteries": 0.0,
        "station_prefix": "",
        "host": srv.mqtt_host,
        "port": srv.mqtt_port,
        "database_url": url,
        "reply_timeout": 10.0,
    }
    try:
        deciding = processor.pid if processor is not None else None
        throughput = run_simulation(srv, {**fleet, "swaps": args.swaps, "rate": 0}, deciding)
        assert ingest.wait_idle(60)
        half = max(throughput["swaps_per_s"] / 2, 1.0)
        count = int(half * args.latency_seconds)
        latency = run_simulation(srv, {**fleet, "swaps": count, "rate": half})
        latency["rate"] = half
        stats = ingest.stats
    finally:
        ingest.stop()
        extra_cpu = 0.0
        for proc in extra:
            extra_cpu += child_result(proc, 60)["cpu_s"]  # communicate() closes its stdin
        store.close()
    if extra:  # CPU of every ingest process, over both runs (the parent's is per run)
        throughput["cpu"]["other ingests (both runs)"] = extra_cpu
    return {
        "throughput": throughput,
        "latency": latency,
        "ingest": stats.as_dict(),
        "ingest_processes": args.ingest_processes,
        "deciding": args.deciding,
    }


# --- report ------------------------------------------------------------------------------------


def machine(srv: Servers) -> dict[str, str]:
    import pymysql
    from sqlalchemy.engine import make_url

    info = {"cpus": str(os.cpu_count()), "python": platform.python_version()}
    with suppress(OSError):
        lines = Path("/proc/meminfo").read_text().splitlines()
        kb = next(line for line in lines if "MemTotal" in line)
        info["ram"] = f"{int(kb.split()[1]) / 1024 / 1024:.1f} GiB"
    url = make_url(srv.database_url)
    conn = pymysql.connect(
        host=url.host, port=url.port or 3306, user=url.username, password=url.password or ""
    )
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        info["mariadb"] = str(cur.fetchone()[0])
    conn.close()
    with suppress(OSError, subprocess.SubprocessError):
        from tests.support.services import find_binary

        binary = find_binary("mosquitto") or "mosquitto"
        out = subprocess.run([binary, "-h"], capture_output=True, text=True, timeout=5)
        info["mosquitto"] = out.stdout.splitlines()[0].replace("mosquitto version ", "")
    from importlib.metadata import version

    info["paho-mqtt"] = version("paho-mqtt")
    return info


@dataclass
class Report:
    machine: dict[str, str] = field(default_factory=dict)
    readings: dict[str, Any] | None = None
    swaps: dict[str, Any] | None = None

    def rows(self) -> list[tuple[str, str, str, str]]:
        rows = []
        if self.readings:
            r = self.readings
            rows += [
                (
                    "raw QoS 1: mosquitto → 1 paho subscriber",
                    f"{r['raw']['rate']:,.0f} msgs/s",
                    "",
                    "",
                ),
                (
                    f"health readings: MQTT → committed events (deciding: {r['deciding']})",
                    f"{r['ingest']['rate']:,.0f} readings/s",
                    f"{r['ratio']:.0%} of raw",
                    _verdict(r["ratio"] >= TARGET_RATIO, "≥ 50 %"),
                ),
            ]
        if self.swaps:
            t, lat = self.swaps["throughput"], self.swaps["latency"]
            auth = lat["latency_s"]["auth"]
            rows += [
                (
                    f"complete v2 swaps, {t['stations']} stations, "
                    f"{self.swaps.get('ingest_processes', 1)} ingest process(es), "
                    f"deciding: {self.swaps['deciding']}",
                    f"{t['swaps_per_s']:,.0f} swaps/s",
                    f"{t['completed']} of {t['attempts']} visits in {t['duration_s']:.1f} s",
                    _verdict(t["swaps_per_s"] >= TARGET_SWAPS, "≥ 500/s"),
                ),
                (
                    f"auth reply latency at {lat['rate']:.0f} visits/s",
                    f"p50 {_ms(auth['p50'])} ms",
                    f"p99 {_ms(auth['p99'])} ms (n={auth['count']})",
                    _verdict((auth["p99"] or 1) * 1000 <= TARGET_P99_MS, "p99 ≤ 50 ms"),
                ),
            ]
        return rows

    def cpu_lines(self) -> list[str]:
        lines = []
        parts = []
        if self.readings:
            parts.append(("readings", self.readings["ingest"]["cpu"]))
        if self.swaps:
            parts.append(("swaps", self.swaps["throughput"]["cpu"]))
        for name, cpu in parts:
            used = ", ".join(
                f"{k} {v:.1f}" for k, v in cpu.items() if k != "wall" and v is not None
            )
            lines.append(f"CPU seconds during {name} ({cpu['wall']:.1f} s wall, 2 cores): {used}")
        return lines

    def print(self) -> None:
        from rich.console import Console
        from rich.table import Table

        table = Table(title="Ingest benchmark")
        for column in ("measure", "result", "detail", "target"):
            table.add_column(column)
        for row in self.rows():
            table.add_row(*row)
        console = Console()
        console.print(table)
        for line in self.cpu_lines():
            console.print(line)
        console.print(", ".join(f"{k} {v}" for k, v in self.machine.items()), style="dim")


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f}"


def _verdict(ok: bool, target: str) -> str:
    return f"{target} {'met' if ok else 'MISSED'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ingest", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command")
    publish = sub.add_parser("publish", help="(child) publish readings")
    publish.add_argument("--host", required=True)
    publish.add_argument("--port", type=int, required=True)
    publish.add_argument("--count", type=int, required=True)
    publish.add_argument("--plan", required=True)
    simulate = sub.add_parser("simulate", help="(child) run the simulator")
    simulate.add_argument("--options", required=True)
    extra = sub.add_parser("ingest", help="(child) one more ingest process")
    extra.add_argument("--database-url", required=True)
    extra.add_argument("--host", required=True)
    extra.add_argument("--port", type=int, required=True)
    extra.add_argument("--group", required=True)
    parser.add_argument("--database-url", help="MariaDB server URL (default: start one)")
    parser.add_argument("--mqtt-host", default="127.0.0.1")
    parser.add_argument("--mqtt-port", type=int, help="mosquitto port (default: start one)")
    parser.add_argument("--readings", type=int, default=50_000, help="(a) readings to publish")
    parser.add_argument("--stations", type=int, default=100, help="stations of the fleet")
    parser.add_argument("--swaps", type=int, default=20_000, help="(b) visits, back to back")
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="(b) latency run")
    parser.add_argument(
        "--ingest-processes",
        type=int,
        default=1,
        help="(b) ingest processes sharing a $share subscription (default 1)",
    )
    parser.add_argument(
        "--deciding",
        choices=("process", "thread"),
        default="process",
        help="where the ingest decides: a child process (bss ingest's default) or a thread",
    )
    parser.add_argument("--only", choices=("readings", "swaps"), help="run one part")
    parser.add_argument("--json", action="store_true", help="print the report as JSON too")
    args = parser.parse_args(argv)
    if args.command == "publish":
        publish_main(args)
        return 0
    if args.command == "simulate":
        simulate_main(args)
        return 0
    if args.command == "ingest":
        ingest_main(args)
        return 0
    report = Report()
    with servers(args) as srv:
        report.machine = machine(srv)
        if args.only in (None, "readings"):
            report.readings = readings_throughput(srv, args)
        if args.only in (None, "swaps"):
            report.swaps = swaps(srv, args)
    report.print()
    if args.json:
        print(
            json.dumps(
                {"machine": report.machine, "readings": report.readings, "swaps": report.swaps},
                indent=2,
                default=str,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
