"""How fast the ledger appends, beside raw PyMySQL inserts of rows of the same size.

    python -m bench.append [--url mysql+pymysql://...] [--commands 3000] [--group 100]

Without ``--url`` a private MariaDB is started in a temporary folder (and stopped at the end).
The workload is the realistic fleet of bench/fleet.py — mostly battery health readings, with
full swaps (auth, initiate, complete), refusals and heartbeats — each command with an
idempotency key, run twice: one command per commit and ``--group`` commands per commit
(the ledger's group commit). Only the time spent inside ``Ledger.execute_many`` counts
(the fleet plans the next commands in between: the benchmark's own work, not the ledger's).
The baseline is raw PyMySQL inserting rows of the same average size into a table of the same
shape, one row per commit and ``--group`` rows per commit, measured in the same run.
Figures are reported, not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pymysql
from sqlalchemy.engine import make_url

from adapters.store import open_store
from bench.fleet import Fleet, drive
from ledger.service import Ledger


@dataclass
class Figure:
    name: str
    events_per_s: float
    commands_per_s: float
    avg_event_bytes: float


def run_ledger(url: str, commands: int, group: int, prefix: str) -> Figure:
    store = open_store(url, init=True)
    ledger = Ledger(store)
    fleet = Fleet(stations=40, slots=10, batteries=320, riders=200, seed=7, prefix=prefix)
    counter = iter(range(10**9))
    spent = [0.0]

    def execute(batch: list[Any]) -> list[Any]:
        items = [(cmd, f"{prefix}:{next(counter)}") for cmd in batch]
        started = time.perf_counter()
        results = ledger.execute_many(items)
        spent[0] += time.perf_counter() - started
        return results

    drive(fleet, execute, fleet.setup(), commands=10**6, batch=200)
    actions = fleet.actions()
    drive(fleet, execute, actions, commands=500, batch=group)  # warm the cache and the server
    head_before = store.recorder.head()
    events_before = ledger.stats["events"]
    spent[0] = 0.0
    # Only the time inside the ledger counts: the fleet plans its commands in between.
    sent = drive(fleet, execute, actions, commands=commands, batch=group)
    elapsed = spent[0]
    events = ledger.stats["events"] - events_before
    rows = store.recorder.select_notifications(start=head_before + 1, limit=5000)
    size = statistics.fmean(len(r.state) + len(str(r.originator_id)) + len(r.topic) for r in rows)
    store.close()
    return Figure(
        f"ledger, {'1 command' if group == 1 else f'{group} commands'} per commit",
        events / elapsed,
        sent / elapsed,
        size,
    )


def run_raw(url: str, rows: int, per_commit: int, state_size: int) -> Figure:
    parsed = make_url(url)
    conn = pymysql.connect(
        host=parsed.host,
        port=parsed.port or 3306,
        user=parsed.username,
        password=parsed.password or "",
        database=parsed.database,
        charset="utf8mb4",
        autocommit=False,
    )
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS bench_raw_events")
    cur.execute(
        "CREATE TABLE bench_raw_events (id BIGINT PRIMARY KEY AUTO_INCREMENT, "
        "originator_id VARCHAR(160) NOT NULL, originator_version BIGINT NOT NULL, "
        "topic VARCHAR(200) NOT NULL, state LONGBLOB NOT NULL, recorded_at DATETIME(6) NOT NULL, "
        "UNIQUE KEY raw_stream (originator_id, originator_version)) "
        "ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
    )
    conn.commit()
    state = b'{"soc":' + b"7" * max(1, state_size - 8) + b"}"
    topic = "domain.battery:Battery.HealthRecorded"
    sql = (
        "INSERT INTO bench_raw_events (originator_id, originator_version, topic, state, "
        "recorded_at) VALUES (%s, %s, %s, %s, %s)"
    )
    n = 0
    started = time.perf_counter()
    while n < rows:
        now = datetime.now(UTC).replace(tzinfo=None)
        batch = [(f"battery:raw{n + i}", 1, topic, state, now) for i in range(per_commit)]
        if per_commit == 1:
            cur.execute(sql, batch[0])
        else:
            cur.executemany(sql, batch)
        conn.commit()
        n += per_commit
    elapsed = time.perf_counter() - started
    cur.execute("DROP TABLE bench_raw_events")
    conn.commit()
    conn.close()
    label = "1 row" if per_commit == 1 else f"{per_commit} rows"
    return Figure(f"raw PyMySQL, {label} per commit", n / elapsed, n / elapsed, state_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", help="MariaDB/MySQL URL (default: a private MariaDB)")
    parser.add_argument("--commands", type=int, default=3000, help="commands per ledger run")
    parser.add_argument("--group", type=int, default=100, help="commands (rows) per grouped commit")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)

    with ExitStack() as stack:
        url = args.url
        version = "?"
        if url is None:
            from tests.support.services import MariaDB

            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-append-"))
            server = MariaDB(folder).start()
            stack.callback(server.cleanup, True)
            stack.callback(server.stop)
            url = server.url
        with (
            pymysql.connect(
                host=make_url(url).host,
                port=make_url(url).port or 3306,
                user=make_url(url).username,
                password=make_url(url).password or "",
            ) as probe,
            probe.cursor() as cur,
        ):
            cur.execute("SELECT VERSION()")
            version = cur.fetchone()[0]

        tag = f"b{int(time.time())}"
        single = run_ledger(url, args.commands, 1, f"{tag}s-")
        grouped = run_ledger(url, args.commands * 3, args.group, f"{tag}g-")
        size = round(statistics.fmean([single.avg_event_bytes, grouped.avg_event_bytes]))
        raw_single = run_raw(url, max(2000, args.commands), 1, size)
        raw_grouped = run_raw(url, max(50_000, args.commands * 10), args.group, size)

    python = platform.python_version()
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python {python}")
    print(f"server:  MariaDB {version}; average stored event {size} bytes\n")
    print(f"{'what':44} {'events/s':>10} {'commands/s':>11} {'vs raw':>8}")
    for figure, raw in ((single, raw_single), (grouped, raw_grouped)):
        print(
            f"{figure.name:44} {figure.events_per_s:10,.0f} {figure.commands_per_s:11,.0f} "
            f"{figure.events_per_s / raw.events_per_s:8.0%}"
        )
        print(f"{raw.name:44} {raw.events_per_s:10,.0f} {'':11} {'100%':>8}")
    if args.json:
        print(
            json.dumps(
                {
                    f.name: {
                        "events_per_s": round(f.events_per_s),
                        "commands_per_s": round(f.commands_per_s),
                    }
                    for f in (single, grouped, raw_single, raw_grouped)
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
