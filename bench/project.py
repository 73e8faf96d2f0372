"""Benchmark: rebuild every read model from N stored events on MariaDB, beside a raw scan.

    python -m bench.project                   # 1,000,000 events in a new database
    python -m bench.project --events 100000   # a quick run
    python -m bench.project --database bench_x --keep   # keep it; later runs reuse it

The events come from a simulated fleet (bench/fleet.py: 100 stations, 5,000 batteries,
2,000 riders; mostly health readings and swaps) sent as real commands through the Ledger
with group commit, so they are exactly what the ledger stores. Then, in the same run:

- raw scan: ``SELECT id, originator_id, originator_version, topic, state, recorded_at
  FROM bss_events ORDER BY id`` through PyMySQL (streamed), every row fetched;
- rebuild: ``replay.rebuild.rebuild`` of all read models into new tables, up to the switch
  (dropping the old tables afterwards is not timed).

The rebuild is reported as events/s and as a ratio to the raw scan. Server: the URL in
BSS_BENCH_DATABASE_URL (default: the development MariaDB on 127.0.0.1:33061).
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import time
from typing import Any

from bench.server import server_url


def _admin(url: str) -> Any:
    import pymysql
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return pymysql.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 3306,
        user=u.username,
        password=u.password or "",
        autocommit=True,
    )


def database_url(name: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(server_url()).set(database=name).render_as_string(hide_password=False)


def create_database(name: str) -> bool:
    """Create the database if missing; True when it was created."""
    conn = _admin(server_url())
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW DATABASES LIKE %s", (name,))
            if cur.fetchone():
                return False
            cur.execute(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            return True
    finally:
        conn.close()


def drop_database(name: str) -> None:
    conn = _admin(server_url())
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


def fill(url: str, events: int, *, seed: int = 7) -> tuple[int, float]:
    """Run fleet commands through the Ledger until the log holds ``events`` events."""
    from adapters.store import open_store
    from bench.fleet import Fleet, drive
    from ledger.service import Ledger
    from readmodels.schema import create_all

    store = open_store(url, init=True)
    create_all(store.engine)
    try:
        head = store.recorder.head()
        if head >= events:
            return head, 0.0
        ledger = Ledger(store)
        fleet = Fleet(stations=100, slots=12, batteries=5000, riders=2000, seed=seed)

        def execute(cmds: list[Any]) -> list[Any]:
            return ledger.execute_many([(cmd, None) for cmd in cmds])

        started = time.perf_counter()
        drive(fleet, execute, fleet.setup(), commands=10**9, batch=500)
        actions = fleet.actions()
        while store.recorder.head() < events:
            missing = events - store.recorder.head()
            drive(fleet, execute, actions, commands=max(50, min(20_000, missing // 2)), batch=500)
            print(f"  filled {store.recorder.head():,} events", end="\r", flush=True)
        print()
        return store.recorder.head(), time.perf_counter() - started
    finally:
        store.close()


def raw_scan(url: str) -> tuple[int, float]:
    """Every event row in id order through PyMySQL, streamed; (rows, seconds)."""
    import pymysql
    import pymysql.cursors
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = pymysql.connect(
        host=u.host or "127.0.0.1",
        port=u.port or 3306,
        user=u.username,
        password=u.password or "",
        database=u.database,
        charset="utf8mb4",
    )
    try:
        started = time.perf_counter()
        rows = 0
        with conn.cursor(pymysql.cursors.SSCursor) as cur:
            cur.execute(
                "SELECT id, originator_id, originator_version, topic, state, recorded_at "
                "FROM bss_events ORDER BY id"
            )
            while True:
                chunk = cur.fetchmany(10_000)
                if not chunk:
                    break
                rows += len(chunk)
        return rows, time.perf_counter() - started
    finally:
        conn.close()


def server_cpu(url: str) -> float | None:
    """CPU seconds used so far by a local mariadbd/mysqld listening on the URL's port
    (best effort: None when it is not a local process this user can read)."""
    from sqlalchemy.engine import make_url

    port = make_url(url).port or 3306
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if not any(a.endswith((b"mariadbd", b"mysqld")) for a in argv[:1]):
                continue
            if f"--port={port}".encode() not in argv:
                continue
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / ticks
        except OSError:
            continue
    return None


def timed_rebuild(
    url: str, batch_size: int | None, processes: int | None
) -> tuple[float, list[Any], int, float | None]:
    from adapters.store import open_store
    from replay.rebuild import drop_generation, rebuild

    store = open_store(url)
    try:
        head = store.recorder.head()
        server_before = server_cpu(url)
        started = time.perf_counter()
        results = rebuild(store, batch_size=batch_size, keep_old=True, processes=processes)
        seconds = time.perf_counter() - started
        server_after = server_cpu(url)
        server = None
        if server_before is not None and server_after is not None:
            server = server_after - server_before
        for r in results:
            drop_generation(store, r.model, r.old_generation)
        return seconds, results, head, server
    finally:
        store.close()


def machine() -> str:
    cpus = os.cpu_count()
    model = ""
    try:
        with open("/proc/cpuinfo") as info:
            model = next(
                (line.split(":", 1)[1].strip() for line in info if line.startswith("model name")),
                "",
            )
    except OSError:
        pass
    return f"{cpus} cores ({model or platform.processor()}), Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--database", help="database name (default: a new one, dropped after)")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument(
        "--processes",
        type=int,
        default=None,
        help="build in this many processes (default: the rebuild's choice)",
    )
    args = parser.parse_args(argv)
    name = args.database or f"bench_proj_{secrets.token_hex(4)}"
    created = create_database(name)
    url = database_url(name)
    try:
        print(f"database {name} ({'new' if created else 'reused'}) on {server_url()}")
        events, fill_seconds = fill(url, args.events)
        if fill_seconds:
            print(
                f"fill: {events:,} events through the Ledger in {fill_seconds:.1f}s "
                f"({events / fill_seconds:,.0f} events/s)"
            )
        rows, scan_seconds = raw_scan(url)
        print(f"raw scan: {rows:,} rows in {scan_seconds:.2f}s ({rows / scan_seconds:,.0f} rows/s)")
        load = os.getloadavg()[0]
        seconds, results, head, server = timed_rebuild(url, args.batch_size, args.processes)
        rate = head / seconds
        print(
            f"rebuild of {len(results)} read models: {head:,} events in {seconds:.1f}s "
            f"({rate:,.0f} events/s); ratio to the raw scan {seconds / scan_seconds:.1f}x "
            f"the time ({rate / (rows / scan_seconds):.1%} of its rate)"
        )
        groups: dict[float, list[str]] = {}
        for r in results:
            groups.setdefault(round(r.details["process_cpu_seconds"], 3), []).append(r.model)
            print(f"  {r.model:10s} {r.events:>9,} events applied")
        print(f"processes: {results[0].details['processes']}")
        for cpu, models in groups.items():
            print(f"  CPU {cpu:.1f}s: {', '.join(models)}")
        if server is not None:
            print(f"  database server CPU {server:.1f}s")
        print(f"machine: {machine()}; load average before the rebuild {load:.2f}")
    finally:
        if not args.keep and args.database is None:
            drop_database(name)


if __name__ == "__main__":
    main()
