"""The embedded MQTT broker of ``bss demo``: iotcore's rumqttd, in a child process.

Why iotcore and not amqtt (DESIGN.md, brokers): the ingest acknowledges a message only after
its events are committed and counts on the broker to redeliver what it did not acknowledge;
iotcore (rumqttd, a Rust broker shipped as a wheel) keeps persistent sessions, redelivers
unacknowledged QoS 1 messages and supports shared subscriptions, at mosquitto's speed.
amqtt drops unacknowledged QoS 1 messages and silently delivers nothing on ``$share/...``.
What iotcore lacks is durability: its sessions and retained messages live in memory, so a
broker restart forgets them. The demo starts and stops the broker with everything else, and
the ledger never depends on that memory: stations re-send what got no reply, and the
idempotency keys turn every re-send into a repeat of the original reply.

The broker runs as ``python -m iotcore --config broker.toml`` (its public command line) in a
session of its own, so a Ctrl-C in the terminal reaches only the demo, which then stops the
broker after the ingest has finished; on Linux the child also gets SIGTERM if the demo dies
without cleaning up. The payload cap is raised from rumqttd's 20 KB so that oversized station
messages reach the ingest and are recorded as rejected (PROTOCOL.md: over 64 KiB).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

MAX_PAYLOAD = 256 * 1024  # above the ledger's own 64 KiB limit: the ingest must see them
MAX_INFLIGHT = 1000  # per connection; MQTT 3.1.1 has no Receive Maximum to negotiate it


class BrokerError(RuntimeError):
    """Raised when the embedded broker cannot start (port taken, iotcore missing, crash)."""


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def render_config(host: str, port: int) -> str:
    """rumqttd's TOML: one MQTT 3.1.1 listener (the one DESIGN.md's broker tests passed)."""
    return f"""\
# rumqttd configuration written by bss demo (adapters/mqtt/broker.py)
id = 0

[router]
id = 0
max_connections = 10010
max_outgoing_packet_count = 1000
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "bss-demo"
listen = "{host}:{port}"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = {MAX_PAYLOAD}
    max_inflight_count = {MAX_INFLIGHT}
    dynamic_filters = true
"""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child before exec
    """Linux: SIGTERM this child when the demo process dies, however it dies."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(libc_name, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class EmbeddedBroker:
    """``EmbeddedBroker(folder, port).start()`` ... ``.stop()``; a context manager too."""

    def __init__(self, folder: Path, port: int = 1883, host: str = "127.0.0.1") -> None:
        self.folder = folder
        self.host = host
        self.port = port
        self.config_path = folder / "broker.toml"
        self.log_path = folder / "broker.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._timeout = 15.0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 15.0, *, wait: bool = True) -> EmbeddedBroker:
        """Start the child; with ``wait``, return once it accepts connections (else call
        :meth:`wait_ready` later: the demo opens the database meanwhile)."""
        try:
            import iotcore  # noqa: F401 - the broker's wheel must be installed
        except ImportError as error:
            raise BrokerError("the embedded broker needs iotcore: pip install iotcore") from error
        if not port_free(self.port, self.host):
            raise BrokerError(f"port {self.port} on {self.host} is in use")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(render_config(self.host, self.port))
        argv = [sys.executable, "-m", "iotcore", "--config", str(self.config_path)]
        argv += ["--log-level", "CRITICAL"]  # rumqttd logs every packet as an error span
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                cwd=self.folder,
            )
        self._timeout = timeout
        return self.wait_ready(timeout) if wait else self

    def wait_ready(self, timeout: float | None = None) -> EmbeddedBroker:
        if self._proc is None:
            raise BrokerError("the broker is not started")
        timeout = self._timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise BrokerError(
                    f"the broker exited at start (code {self._proc.returncode}); "
                    f"see {self.log_path}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerError(f"the broker did not listen on {self.host}:{self.port} in {timeout}s")

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the child we started (by its pid), SIGKILL if it lingers."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
