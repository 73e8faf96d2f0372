"""Query latency of the HTTP API under a steady 1,000 requests/s, with 100k and 1M events
stored (reported, not asserted; see docs/benchmarks.md, section "Queries").

    python -m bench.query [--mysql-url mysql+pymysql://user:pw@host:port/]

For each history size the store is filled with the simulated fleet (bench/fleet.py: real
commands through the ledger, group-committed), every projection catches up, and then a
separate load-generator process sends GET requests at a fixed rate (open loop: each
request has a scheduled send time and its latency counts from then, so a stalled server
cannot hide queueing) to a separate ``bss api`` process, one endpoint at a time:

    GET /api/stations/{id}   GET /api/batteries?station_id={id}   GET /api/swaps?limit=50

``wrk`` on this machine is wrk 4 (no ``-R`` constant-rate mode, which only wrk2 has), so
the load generator is the small asyncio client below (``python -m bench.query load``):
raw HTTP/1.1 keep-alive connections, no client library overhead in the measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
ENDPOINTS = (
    ("GET /api/stations/{id}", "/api/stations/{station}"),
    ("GET /api/batteries?station_id=", "/api/batteries?station_id={station}"),
    ("GET /api/swaps?limit=50", "/api/swaps?limit=50"),
)


# --- the load generator (its own process) ----------------------------------------------


async def _connect(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(host, port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("closed")
    status = int(status_line.split()[1])
    length = 0
    chunked = False
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readline()).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return status


async def load(
    url: str, token: str, rate: float, seconds: float, warmup: float, connections: int
) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nAccept: application/json\r\n\r\n"
    ).encode()
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await _connect(host, port))
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    measure_from = 0.0

    async def one(scheduled: float) -> None:
        nonlocal errors
        reader, writer = await idle.get()
        try:
            status = await _exchange(reader, writer, request)
        except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            writer.close()
            idle.put_nowait(await _connect(host, port))
            return
        idle.put_nowait((reader, writer))
        if scheduled >= measure_from:
            latencies.append(loop.time() - scheduled)
            statuses[status] = statuses.get(status, 0) + 1

    start = loop.time() + 0.05
    measure_from = start + warmup
    total = int(rate * (warmup + seconds))
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - measure_from
    latencies.sort()

    def q(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 2)

    return {
        "requests": len(latencies),
        "rate": round(len(latencies) / elapsed, 1),
        "p50_ms": q(0.50),
        "p90_ms": q(0.90),
        "p99_ms": q(0.99),
        "max_ms": q(1.0),
        "statuses": statuses,
        "errors": errors,
    }


# --- the driver ------------------------------------------------------------------------


def fill(ledger: Any, fleet: Any, planned: Any, target: int, batch: int = 200) -> float:
    """Drive the fleet until the store holds ``target`` events; returns seconds taken."""
    from bench.fleet import drive

    started = time.perf_counter()
    while ledger.recorder.head() < target:
        drive(
            fleet,
            lambda commands: ledger.execute_many([(c, None) for c in commands]),
            planned,
            commands=batch * 20,
            batch=batch,
        )
    return time.perf_counter() - started


def catch_up(store: Any) -> float:
    from projections import make
    from projections.runner import Worker

    started = time.perf_counter()
    for projection in make():
        Worker(store, projection).catch_up()
    return time.perf_counter() - started


def _start_api(db_url: str, cache_seconds: float) -> tuple[subprocess.Popen[bytes], str]:
    """``bss api`` in its own process (answer cache on, or off with 0)."""
    import httpx

    from tests.support.services import free_port

    port = free_port()
    env = {
        **os.environ,
        "BSS_DATABASE_URL": db_url,
        "BSS_HTTP_PORT": str(port),
        "BSS_HTTP_HOST": "127.0.0.1",
        "BSS_READ_CACHE_SECONDS": str(cache_seconds),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli.main", "api"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError("bss api did not start")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_load(
    url: str, token: str, rate: float, args: argparse.Namespace, api_pid: int
) -> dict[str, Any]:
    before = _cpu_seconds(api_pid)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.query",
            "load",
            "--target",
            url,
            "--token",
            token,
            "--rate",
            str(rate),
            "--seconds",
            str(args.seconds),
            "--warmup",
            str(args.warmup),
            "--connections",
            str(args.connections),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    sent = rate * (args.seconds + args.warmup)
    # CPU the API process spent per request: what the figures cost, whatever else runs.
    result["api_cpu_ms"] = round((_cpu_seconds(api_pid) - before) * 1000 / sent, 3)
    return result


def machine() -> str:
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}"


def main_bench(args: argparse.Namespace) -> None:
    from adapters.http.server import open_ledger
    from adapters.http.tokens import TokenStore
    from bench.fleet import Fleet
    from bench.server import new_database, server_url
    from ledger.settings import Settings

    db_url = args.database_url or new_database(args.mysql_url or server_url(), "bench_query")
    ledger = open_ledger(Settings(BSS_DATABASE_URL=db_url))
    token = TokenStore(ledger.store.engine).create("admin", "bench.query")[1]
    fleet = Fleet(
        stations=args.stations,
        slots=10,
        batteries=args.stations * 14,
        riders=args.stations * 60,
        seed=7,
    )
    planned = iter(_chain(fleet))
    print(f"# bench.query on {machine()}; database {ledger.store.url}", flush=True)
    print(f"# load average before: {os.getloadavg()}", flush=True)
    apis: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    results = []
    modes = [("cached", 0.02, args.rate), ("uncached", 0.0, args.uncached_rate)]
    try:
        for size in args.sizes:
            filled = fill(ledger, fleet, planned, size)
            projected = catch_up(ledger.store)
            head = ledger.recorder.head()
            print(
                f"# {head} events stored (fill {filled:.0f} s, projections {projected:.0f} s)",
                flush=True,
            )
            for mode, seconds, _ in modes:  # fresh API processes for each history size
                if mode in apis:
                    apis[mode][0].terminate()
                    apis[mode][0].wait(20)
                apis[mode] = _start_api(db_url, seconds)
            station = fleet.id("st", 1)
            for mode, _, rate in modes:
                if rate <= 0:
                    continue
                process, url = apis[mode]
                for label, template in ENDPOINTS:
                    got = _run_load(
                        url + template.format(station=station), token, rate, args, process.pid
                    )
                    row = {
                        "events": head,
                        "mode": mode,
                        "endpoint": label,
                        "load": list(os.getloadavg()),
                        **got,
                    }
                    results.append(row)
                    print(json.dumps(row), flush=True)
    finally:
        for process, _ in apis.values():
            process.terminate()
            process.wait(20)
        ledger.store.close()
    print(
        "\n| events | answers | endpoint | target req/s | achieved | p50 ms | p90 ms | p99 ms "
        "| max ms | API CPU ms/req | non-200 |"
    )
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        bad = sum(n for s, n in r["statuses"].items() if str(s) != "200") + r["errors"]
        target = args.rate if r["mode"] == "cached" else args.uncached_rate
        print(
            f"| {r['events']:,} | {r['mode']} | `{r['endpoint']}` | {target:.0f} | "
            f"{r['rate']:.0f} | {r['p50_ms']} | {r['p90_ms']} | {r['p99_ms']} | "
            f"{r['max_ms']} | {r['api_cpu_ms']} | {bad} |"
        )


def _chain(fleet: Any) -> Any:
    yield from fleet.setup()
    yield from fleet.actions()


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "load":
        parser = argparse.ArgumentParser(prog="bench.query load")
        parser.add_argument("--target", required=True)
        parser.add_argument("--token", required=True)
        parser.add_argument("--rate", type=float, default=1000)
        parser.add_argument("--seconds", type=float, default=10)
        parser.add_argument("--warmup", type=float, default=2)
        parser.add_argument("--connections", type=int, default=32)
        a = parser.parse_args(argv[1:])
        result = asyncio.run(load(a.target, a.token, a.rate, a.seconds, a.warmup, a.connections))
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(prog="bench.query", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--mysql-url",
        default=None,
        help="A MariaDB server (a new database is made on it); default: "
        "BSS_BENCH_DATABASE_URL, else a private server started for the run.",
    )
    parser.add_argument("--database-url", help="Use (and grow) this database instead.")
    parser.add_argument(
        "--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[100_000, 1_000_000]
    )
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument(
        "--uncached-rate",
        type=float,
        default=100,
        help="Rate for the API with its answer cache off (0: skip).",
    )
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--connections", type=int, default=32)
    main_bench(parser.parse_args(argv))


if __name__ == "__main__":
    main()
