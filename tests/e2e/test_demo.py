"""``bss demo`` as a user runs it: a process in an empty folder, stopped with Ctrl-C (SIGINT),
started again. Swaps land in the SQLite file; the second run registers nothing new and adds
swaps; no child process outlives the demo.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.services import free_port

pytest.importorskip("iotcore")

REGISTRATIONS = ("%Station.Registered", "%Battery.Registered", "%Rider.Registered")


def _count(db: Path, *topics: str) -> int:
    if not db.exists():
        return 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        where = " OR ".join("topic LIKE ?" for _ in topics)
        row = conn.execute(f"SELECT COUNT(*) FROM bss_events WHERE {where}", topics).fetchone()
        return int(row[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0
    finally:
        conn.close()


def _run_demo(folder: Path, until_swaps: int, timeout: float = 90.0) -> tuple[str, int]:
    """Start the demo, wait until the file holds ``until_swaps`` completed swaps, Ctrl-C it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BSS_", "MQTT_"))}
    env.pop("DATABASE_URL", None)
    argv = [
        sys.executable, "-m", "adapters.cli.main", "demo",
        "--stations", "4", "--riders", "30", "--rate", "5", "--dialect", "mixed",
        "--broker-port", str(free_port()), "--http-port", str(free_port()),
    ]  # fmt: skip
    db = folder / "bss-ledger.sqlite"
    proc = subprocess.Popen(
        argv,
        cwd=folder,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "COLUMNS": "120"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # our SIGINT goes to the demo only, as a terminal's would
    )
    try:
        deadline = time.monotonic() + timeout
        while _count(db, "%SwapSession.Completed") < until_swaps:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            assert time.monotonic() < deadline, "no swaps recorded in time"
            time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return output.decode(errors="replace"), proc.returncode


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")


def test_demo_records_swaps_stops_on_ctrl_c_and_resumes(tmp_path: Path) -> None:
    db = tmp_path / "bss-ledger.sqlite"
    output, code = _run_demo(tmp_path, until_swaps=3)
    assert code == 0, output
    assert "Demo summary" in output
    first_swaps = _count(db, "%SwapSession.Completed")
    registered = _count(db, *REGISTRATIONS)
    assert first_swaps >= 3
    assert _count(db, "%Station.Registered") == 4
    assert _count(db, "%Rider.Registered") == 30
    broker_pid = int(re.search(r"pid (\d+)", output).group(1))  # type: ignore[union-attr]
    assert not _alive(broker_pid), "the embedded broker outlived the demo"

    output, code = _run_demo(tmp_path, until_swaps=first_swaps + 3)
    assert code == 0, output
    assert "registered 0 new" in output
    assert _count(db, *REGISTRATIONS) == registered  # nothing registered twice
    assert _count(db, "%SwapSession.Completed") >= first_swaps + 3
    broker_pid = int(re.search(r"pid (\d+)", output).group(1))  # type: ignore[union-attr]
    assert not _alive(broker_pid)
