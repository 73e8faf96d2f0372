"""Real MariaDB and mosquitto servers for tests, started without systemd.

Each server lives in its own folder under a temporary directory, listens on 127.0.0.1 on a
random free port and is stopped by the pid this module started (never by name).  Tests get
them through the fixtures in ``tests/conftest.py``; ``./scripts/test`` starts one shared pair
with ``python -m tests.support.services up DIR`` and stops the pids listed in ``DIR/pids``.

Pitfalls handled here (see /work/shared/SERVICES.md and docs/testing.md):

* ``--no-defaults`` everywhere, so ``/etc/mysql`` and ``/run/mysqld`` are never touched;
  ``--user=root`` because mariadbd refuses to run as root otherwise.
* ``--auth-root-authentication-method=normal`` plus an application user created for
  ``'%'`` and ``'127.0.0.1'`` (``--skip-name-resolve`` makes TCP logins match those, not
  ``'localhost'``); anonymous users are dropped so they cannot shadow it.
* Unix socket paths are limited to 107 bytes; pytest's tmp paths can be longer, so the
  socket then goes to a short folder of its own.
* mosquitto 2.0 drops to user ``mosquitto`` *before* it reads password, ACL and TLS files
  (and cannot read root's 0700 temporary folders), so when running as root the config says
  ``user root``; it logs to stderr, which the parent redirects to a file.
* mosquitto's default ``max_queued_messages 1000`` silently drops QoS 1 messages to a slow
  subscriber: the default config raises it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

HOST = "127.0.0.1"
_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")
_MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes including the NUL; keep a margin


class ServiceError(RuntimeError):
    """A server could not be started or stopped."""


class MqttBroker(NamedTuple):
    """Where a broker listens (the ``mqtt_broker`` fixture's value): ``host, port = broker``."""

    host: str
    port: int


def find_binary(name: str) -> str | None:
    """Return the path of ``name`` on PATH or in the sbin folders (not always on PATH)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in _SBIN_DIRS:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def require_binary(name: str, package: str) -> str:
    path = find_binary(name)
    if path is None:
        raise ServiceError(
            f"{name} not found: install the Debian package {package!r} "
            "(./scripts/test does that on a fresh machine)"
        )
    return path


def missing_binaries() -> list[str]:
    """Names of the server binaries this module needs that are not installed."""
    needed = ("mariadb-install-db", "mariadbd", "mosquitto", "mosquitto_passwd")
    return [name for name in needed if find_binary(name) is None]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it at random)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def tcp_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


# Servers started in this process and not detached: stopped at interpreter exit, so an
# aborted pytest run (Ctrl-C, an error in a fixture) does not leave them running.
_LIVE: weakref.WeakSet[_Server] = weakref.WeakSet()


@atexit.register
def _stop_live_servers() -> None:
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop()


class _Server:
    """One child process that we started, and know by pid."""

    name = "server"

    def __init__(self, pid_registry: Path | None = None) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._detached = False
        self.pid_registry = pid_registry
        self.log_path: Path = Path(os.devnull)

    # -- process handling ---------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _spawn(self, argv: Sequence[str], log_path: Path) -> None:
        self.log_path = log_path
        with open(log_path, "ab") as log:
            # A session of its own: a Ctrl-C in the terminal reaches the test runner (which
            # then stops the server in order), not the server directly.  stdout/stderr go to
            # the log file, never to a pipe of ours (``$(...)`` in bash would wait forever).
            self._proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                close_fds=True,
            )
        self._paused = False
        if not self._detached:
            _LIVE.add(self)
        if self.pid_registry is not None:
            with open(self.pid_registry, "a") as registry:
                registry.write(f"{self._proc.pid}\n")

    def _signal(self, signum: int) -> None:
        if self.is_running:
            assert self._proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signum)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the pid we started, wait, SIGKILL if it does not exit in ``timeout`` s."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            if self._paused:  # a stopped process would not act on SIGTERM before SIGCONT
                self._signal(signal.SIGCONT)
            self._signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                proc.wait(10)
        self._paused = False
        _LIVE.discard(self)

    def kill(self) -> None:
        """SIGKILL: a crash, no orderly shutdown (data committed before must survive)."""
        proc = self._proc
        if proc is None:
            return
        self._signal(signal.SIGKILL)
        proc.wait(10)
        self._paused = False
        _LIVE.discard(self)

    def pause(self) -> None:
        """SIGSTOP: the server hangs; connections are accepted by the kernel, never answered."""
        self._signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self._paused = False

    def detach(self) -> None:
        """Leave the server running when this Python process exits (used by ``up``)."""
        self._detached = True
        _LIVE.discard(self)

    def start(self) -> Any:
        raise NotImplementedError

    def cleanup(self, remove_data: bool = False) -> None:
        self.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Any:
        if not self.is_running:
            self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _died(self, what: str) -> ServiceError:
        code = self._proc.returncode if self._proc is not None else None
        return ServiceError(
            f"{self.name} {what} (exit code {code}); log {self.log_path}:\n{_tail(self.log_path)}"
        )


class MariaDB(_Server):
    """A private MariaDB server: its own datadir, socket and TCP port on 127.0.0.1.

    ``start()`` initialises the datadir on first use, starts ``mariadbd``, waits until root
    can log in over the socket, and creates ``database`` and a TCP user with a password made
    at run time.  ``stop()``/``start()`` (or ``pause()``/``resume()``, or ``kill()`` and
    ``start()``) keep the datadir and the port, so a test can take the server away and bring
    it back while its clients keep the same URL.
    """

    name = "mariadbd"

    #: Server settings for tests.  innodb_flush_log_at_trx_commit stays at its default 1, so a
    #: commit is durable and a killed server keeps every committed transaction.
    DEFAULT_OPTIONS: tuple[str, ...] = (
        "--innodb-buffer-pool-size=256M",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
        "--max-connections=500",
        "--max-allowed-packet=64M",
        "--skip-log-bin",
        "--skip-host-cache",
    )

    def __init__(
        self,
        tmpdir: str | os.PathLike[str],
        *,
        port: int | None = None,
        database: str = "bss_test",
        user: str = "bss",
        password: str | None = None,
        options: Iterable[str] = (),
        pid_registry: Path | None = None,
    ) -> None:
        super().__init__(pid_registry)
        self.dir = Path(tempfile.mkdtemp(prefix="mariadb-", dir=os.fspath(tmpdir)))
        self.datadir = self.dir / "data"
        self._socket_dir: Path | None = None
        socket_path = self.dir / "mariadbd.sock"
        if len(os.fsencode(socket_path)) > _MAX_SOCKET_PATH:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="bssdb-", dir="/tmp"))
            socket_path = self._socket_dir / "mariadbd.sock"
        self.socket = socket_path
        self.host = HOST
        self._port_fixed = port is not None
        self.port = port if port is not None else free_port()
        self.database = database
        self.user = user
        self.password = password if password is not None else secrets.token_urlsafe(18)
        self.options = list(self.DEFAULT_OPTIONS) + list(options)
        self._started_once = False

    # -- URLs ---------------------------------------------------------------------------

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` on this server, as the application user over TCP."""
        return (
            f"mysql+pymysql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{database}?charset=utf8mb4"
        )

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    # -- lifecycle ----------------------------------------------------------------------

    def _initialise(self) -> None:
        log = self.dir / "install.log"
        argv = [
            require_binary("mariadb-install-db", "mariadb-server"),
            "--no-defaults",
            "--user=root",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--skip-name-resolve",
        ]
        with open(log, "wb") as out:
            result = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False
            )
        if result.returncode != 0:
            raise ServiceError(
                f"mariadb-install-db failed ({result.returncode}); log {log}:\n{_tail(log)}"
            )

    def _argv(self) -> list[str]:
        return [
            require_binary("mariadbd", "mariadb-server"),
            "--no-defaults",  # must come first: never read /etc/mysql
            f"--datadir={self.datadir}",
            f"--socket={self.socket}",
            f"--port={self.port}",
            f"--pid-file={self.dir / 'mariadbd.pid'}",
            f"--log-error={self.dir / 'error.log'}",
            f"--tmpdir={self.dir}",
            f"--bind-address={self.host}",
            "--skip-name-resolve",
            "--user=root",
            *self.options,
        ]

    def start(self, timeout: float = 60.0) -> MariaDB:
        if self.is_running:
            return self
        if not (self.datadir / "mysql").is_dir():
            self._initialise()
        for attempt in range(3):
            self._spawn(self._argv(), self.dir / "mariadbd.out")
            self.log_path = self.dir / "error.log"  # mariadbd writes its messages there
            try:
                self._wait_ready(timeout)
                break
            except ServiceError:
                port_taken = "Address already in use" in _tail(self.dir / "error.log", 40)
                if self.is_running or self._port_fixed or not port_taken or attempt == 2:
                    self.stop()
                    raise
                self.port = free_port()  # lost a race for the port: take another one
        if not self._started_once:
            self._provision()
            self._started_once = True
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if not self.is_running:
                raise self._died("exited while starting")
            try:
                self.admin_connect(connect_timeout=2, read_timeout=2).close()
                return
            except Exception as exc:  # not up yet: socket missing, privileges not loaded
                last_error = exc
            time.sleep(0.05)
        self.stop()
        raise ServiceError(
            f"mariadbd not ready after {timeout:.0f} s ({last_error}); "
            f"{self.dir / 'error.log'}:\n{_tail(self.dir / 'error.log')}"
        )

    def _provision(self) -> None:
        conn = self.admin_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT User, Host FROM mysql.user WHERE User = ''")
                for user, host in cur.fetchall():
                    cur.execute("DROP USER %s@%s", (user, host))
                for host in ("%", "127.0.0.1", "localhost"):
                    cur.execute(
                        "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s",
                        (self.user, host, self.password),
                    )
                    # ALL ON *.*: the fixtures create and drop a database per test as this user.
                    cur.execute("GRANT ALL PRIVILEGES ON *.* TO %s@%s", (self.user, host))
                cur.execute(_create_database_sql(self.database))
        finally:
            conn.close()

    def cleanup(self, remove_data: bool = False) -> None:
        """Stop the server, remove the short socket folder and, if asked, the datadir (~110 MB).

        The logs stay in ``self.dir``.
        """
        self.stop()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        if remove_data:
            shutil.rmtree(self.datadir, ignore_errors=True)

    # -- administration -----------------------------------------------------------------

    def admin_connect(
        self, database: str | None = None, connect_timeout: float = 10, read_timeout: float = 120
    ) -> Any:
        """A PyMySQL connection as root over the Unix socket (autocommit on)."""
        import pymysql

        return pymysql.connect(
            unix_socket=str(self.socket),
            user="root",
            password="",
            database=database,
            charset="utf8mb4",
            autocommit=True,
            connect_timeout=connect_timeout,
            # connect_timeout covers only the connect: a hung (paused, starting) server accepts
            # it and then never sends its greeting; without read_timeout we would wait forever.
            read_timeout=read_timeout,
        )

    def connect(self, database: str | None = None, **kwargs: Any) -> Any:
        """A PyMySQL connection as the application user over TCP, like the application's."""
        import pymysql

        return pymysql.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database if database is not None else self.database,
            charset="utf8mb4",
            **kwargs,
        )

    def create_database(self, name: str | None = None) -> str:
        """Create an empty utf8mb4 database (random name by default) and return its URL."""
        name = name or f"t_{secrets.token_hex(6)}"
        conn = self.admin_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(_create_database_sql(name))
        finally:
            conn.close()
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        conn = self.admin_connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)}")
        finally:
            conn.close()


def _quote_ident(name: str) -> str:
    if not name or len(name) > 64 or "\x00" in name:
        raise ValueError(f"bad database name {name!r}")
    return "`" + name.replace("`", "``") + "`"


def _create_database_sql(name: str) -> str:
    return (
        f"CREATE DATABASE IF NOT EXISTS {_quote_ident(name)} "
        "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    )


class Mosquitto(_Server):
    """A private mosquitto broker on 127.0.0.1 and a random port.

    Default config: anonymous access (unless ``extra_config`` names a ``password_file``),
    no persistence, ``max_queued_messages 100000``.  ``extra_config`` lines are appended and
    replace a default of the same name.  ``config`` replaces the whole file (for password,
    ACL or TLS tests); readiness is then a plain TCP connect (no anonymous MQTT login
    assumed).  In both, ``{port}`` and ``{dir}`` become this broker's port and folder.
    Use ``write_file()`` for password/ACL/certificate files next to the config.
    """

    name = "mosquitto"

    DEFAULTS: tuple[tuple[str, str], ...] = (
        ("persistence", "persistence false"),
        # mosquitto's default 1000 silently drops QoS 1 messages to a subscriber that falls
        # behind (or is offline with a persistent session).
        ("max_queued_messages", "max_queued_messages 100000"),
        ("max_inflight_messages", "max_inflight_messages 100"),
        ("set_tcp_nodelay", "set_tcp_nodelay true"),
        ("connection_messages", "connection_messages true"),
    )

    def __init__(
        self,
        tmpdir: str | os.PathLike[str],
        extra_config: str = "",
        *,
        config: str | None = None,
        port: int | None = None,
        pid_registry: Path | None = None,
    ) -> None:
        super().__init__(pid_registry)
        self.dir = Path(tempfile.mkdtemp(prefix="mosquitto-", dir=os.fspath(tmpdir)))
        self.host = HOST
        self._port_fixed = port is not None
        self.port = port if port is not None else free_port()
        self.extra_config = extra_config
        self.custom_config = config
        self.config_path = self.dir / "mosquitto.conf"

    @property
    def anonymous(self) -> bool:
        """Whether readiness may log in anonymously (only with the default config)."""
        if self.custom_config is not None:
            return False
        keys = _config_keys(self.extra_config)
        if "allow_anonymous" in keys:
            return keys["allow_anonymous"].split()[1:2] == ["true"]
        return "password_file" not in keys and "plugin" not in keys

    def write_file(self, name: str, content: str | bytes, mode: int = 0o600) -> Path:
        """Write a file (password file, ACL, certificate) into this broker's folder."""
        path = self.dir / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        path.chmod(mode)
        return path

    def add_user(self, username: str, password: str, file_name: str = "passwd") -> Path:
        """Add a user to a mosquitto password file (created if missing) with mosquitto_passwd."""
        path = self.dir / file_name
        argv = [require_binary("mosquitto_passwd", "mosquitto"), "-b"]
        if not path.exists():
            argv.append("-c")
        subprocess.run(
            [*argv, str(path), username, password],
            check=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
        )
        return path

    def render_config(self) -> str:
        run_as_root = ["user root"] if os.geteuid() == 0 else []
        if self.custom_config is not None:
            text = self._fill(self.custom_config)
            if "user" not in _config_keys(text):
                text = "\n".join([*run_as_root, text])
            return text if text.endswith("\n") else text + "\n"
        extra = _config_keys(self.extra_config)
        lines = ["# written by tests/support/services.py", *run_as_root]
        lines.append(f"listener {self.port} {self.host}")
        if "allow_anonymous" not in extra:
            lines.append(f"allow_anonymous {'true' if self.anonymous else 'false'}")
        lines += [line for key, line in self.DEFAULTS if key not in extra]
        if "log_dest" not in extra:
            # mosquitto runs as user mosquitto by default and cannot open files in root's
            # folders: log to stderr, which the parent redirects to a file.
            lines.append("log_dest stderr")
        if "log_type" not in extra:
            lines += ["log_type error", "log_type warning", "log_type notice"]
            lines.append("log_type information")
        lines.append(self._fill(self.extra_config))
        return "\n".join(lines) + "\n"

    def _fill(self, text: str) -> str:
        return text.replace("{port}", str(self.port)).replace("{dir}", str(self.dir))

    def start(self, timeout: float = 30.0) -> Mosquitto:
        if self.is_running:
            return self
        binary = require_binary("mosquitto", "mosquitto")
        for attempt in range(3):
            self.config_path.write_text(self.render_config())
            log = self.dir / "mosquitto.log"
            offset = log.stat().st_size if log.exists() else 0
            self._spawn([binary, "-c", str(self.config_path)], log)
            try:
                self._wait_ready(timeout, offset)
                return self
            except ServiceError:
                port_taken = "Address already in use" in _tail(log)
                if self.is_running or self._port_fixed or not port_taken or attempt == 2:
                    self.stop()
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _wait_ready(self, timeout: float, log_offset: int) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_running:
                raise self._died("exited while starting")
            if self.anonymous:
                ready = mqtt_connack(self.host, self.port) == 0
            else:  # password, ACL or TLS: an anonymous MQTT login may be refused
                ready = tcp_accepts(self.host, self.port)
            if ready:
                # Another program may have held the port: mosquitto then exits at once.
                time.sleep(0.05)
                if not self.is_running:
                    raise self._died("exited while starting")
                return
            time.sleep(0.02)
        self.stop()
        raise ServiceError(f"mosquitto not ready after {timeout:.0f} s:\n{_tail(self.log_path)}")


def _config_keys(text: str) -> dict[str, str]:
    keys: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            keys[line.split()[0]] = line
    return keys


def mqtt_connack(host: str, port: int, timeout: float = 2.0) -> int | None:
    """Send a bare MQTT 3.1.1 CONNECT (anonymous, clean session); return the CONNACK code."""
    client_id = f"ready-{secrets.token_hex(4)}".encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x3c"
    payload = len(client_id).to_bytes(2, "big") + client_id
    body = variable + payload
    packet = b"\x10" + bytes([len(body)]) + body
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(packet)
            answer = b""
            while len(answer) < 4:
                chunk = sock.recv(4 - len(answer))
                if not chunk:
                    return None
                answer += chunk
            with contextlib.suppress(OSError):
                sock.sendall(b"\xe0\x00")  # DISCONNECT
    except OSError:
        return None
    if answer[0] != 0x20:
        return None
    return answer[3]


# -- command line: used by ./scripts/test ---------------------------------------------------


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (tells a live process from a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _is_ours(pid: int, directory: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return os.fsencode(directory) in cmdline


def _registered_pids(directory: Path) -> list[int]:
    try:
        text = (directory / "pids").read_text()
    except OSError:
        return []
    return [int(word) for word in text.split() if word.isdigit()]


def _watch(directory: Path, owner: int, owner_start: str) -> int:
    """Stop the servers in ``directory/pids`` once ``owner`` (the script) is gone.

    The script's trap normally stops everything (this watchdog included); this covers the
    case where the script itself is SIGKILLed and no trap runs.
    """
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    while _start_time(owner) == owner_start:
        if not (directory / "pids").exists():
            return 0  # the script cleaned up
        time.sleep(0.5)
    pids = [p for p in _registered_pids(directory) if p != os.getpid() and _is_ours(p, directory)]
    for sig in (signal.SIGCONT, signal.SIGTERM):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_is_ours(p, directory) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if _is_ours(pid, directory):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    shutil.rmtree(directory, ignore_errors=True)
    return 0


def _spawn_watchdog(directory: Path, owner: int, registry: Path) -> None:
    owner_start = _start_time(owner)
    if owner_start is None:
        raise ServiceError(f"owner pid {owner} is not running")
    argv = [sys.executable, "-m", "tests.support.services", "watch", str(directory)]
    with open(directory / "watchdog.log", "ab") as log:
        proc = subprocess.Popen(
            [*argv, str(owner), owner_start],
            cwd=Path(__file__).resolve().parents[2],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    with open(registry, "a") as out:
        out.write(f"{proc.pid}\n")


def _up(directory: Path, owner: int | None = None) -> int:
    """Start one MariaDB and one mosquitto in ``directory``; print ``export`` lines.

    Every pid is appended to ``directory/pids`` the moment it exists, so the caller's trap can
    stop exactly those processes whatever happens.  On any failure (or SIGINT/SIGTERM) the
    servers started so far are stopped here before exiting non-zero.  With ``owner`` (the
    calling script's pid) a watchdog stops them too should the script die without its trap.
    """
    import shlex

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    registry = directory / "pids"
    registry.touch()
    servers: list[_Server] = []
    try:
        if owner is not None:
            _spawn_watchdog(directory, owner, registry)
        t0 = time.monotonic()
        mariadb = MariaDB(directory, pid_registry=registry)
        servers.append(mariadb)
        mariadb.start()
        t1 = time.monotonic()
        mosquitto = Mosquitto(directory, pid_registry=registry)
        servers.append(mosquitto)
        mosquitto.start()
        t2 = time.monotonic()
    except BaseException as exc:
        for server in reversed(servers):
            with contextlib.suppress(Exception):
                server.stop()
        if isinstance(exc, Exception):
            print(f"services: {exc}", file=sys.stderr)
            return 1
        raise
    for server in servers:
        server.detach()
    print(
        f"services: MariaDB pid {mariadb.pid} on {HOST}:{mariadb.port} ready in {t1 - t0:.1f} s;"
        f" mosquitto pid {mosquitto.pid} on {HOST}:{mosquitto.port} ready in {t2 - t1:.1f} s",
        file=sys.stderr,
    )
    exports = {
        "BSS_TEST_DATABASE_URL": mariadb.url,
        "BSS_TEST_MQTT_HOST": mosquitto.host,
        "BSS_TEST_MQTT_PORT": str(mosquitto.port),
        "BSS_TEST_SERVICES_DIR": str(directory),
    }
    for key, value in exports.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) in (2, 4) and args[0] == "up" and args[2:3] in ([], ["--owner"]):
        return _up(Path(args[1]).resolve(), int(args[3]) if len(args) == 4 else None)
    if len(args) == 4 and args[0] == "watch":
        return _watch(Path(args[1]), int(args[2]), args[3])
    if args == ["check"]:
        missing = missing_binaries()
        print(" ".join(missing))
        return 1 if missing else 0
    print(
        "usage: python -m tests.support.services up DIR [--owner PID]\n"
        "         start MariaDB + mosquitto in DIR, print export lines, pids in DIR/pids;\n"
        "         with --owner, a watchdog stops them when PID exits without cleaning up\n"
        "       python -m tests.support.services check    (list missing server binaries)",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
