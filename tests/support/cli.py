"""Running ``bss`` as a real process from tests: the command line and a one-shot helper."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BSS = [sys.executable, "-m", "adapters.cli.main"]


def bss(env: dict[str, str], *args: str) -> str:
    """Run ``bss *args`` to its end in the repository with ``env``; its standard output (the
    test fails with its output when it exits non-zero)."""
    done = subprocess.run(
        [*BSS, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


class BssProcess:
    """``bss *args`` running in a child process of its own session (its own process group),
    logging to a file shared by restarts (``text()`` is this process's part of it)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.offset = log.stat().st_size if log.exists() else 0
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [*BSS, *args],
                cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.log.read_text(errors="replace")[self.offset :]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no orderly shutdown at all
        self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def interrupt(self, timeout: float = 30.0) -> int:
        """Ctrl-C: SIGINT to its whole process group (child processes included), then wait
        for the group to be empty; the exit code."""
        os.killpg(self.proc.pid, signal.SIGINT)
        code = self.proc.wait(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return code
            time.sleep(0.05)
        raise AssertionError(f"a process of `bss {self.proc.args[3]}` outlived it")

    def ensure_stopped(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
