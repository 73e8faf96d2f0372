"""Station trust on mosquitto: one MQTT user per station, confined to its own topic subtree.

``write_credentials`` produces, in one folder, what a mosquitto 2.0 broker needs:

- ``passwd``: the password file, in mosquitto's own ``$7$`` format (PBKDF2-SHA512), written
  here in Python so no password ever appears on a command line (``mosquitto_passwd -b`` puts
  it in ``argv``, readable in ``ps`` by every local user);
- ``acl``: ``pattern readwrite bss/%u/#`` (a station's user name is its id, so it reaches only
  ``bss/<its id>/#``), and the ledger's user, which reads ``bss/+/#`` and writes only the
  reply topics;
- ``mosquitto.conf``: anonymous access off, those two files, a raised
  ``max_queued_messages`` (the default 1000 silently drops QoS 1 messages to a subscriber
  that falls behind), persistence, and an optional TLS listener.

New passwords are returned to the caller (the CLI prints them once) and never stored in
clear. Existing users keep their hashes unless they are named again (then they are rotated).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

LEDGER_USER = "bss-ledger"
ROOT = "bss"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - a broker's listener for remote stations
REPLY_TOPICS = (
    "user/auth/response",
    "auth/response",
    "swap/decision",
    "swap/confirmation",
    "swap/error",
    "error",
)

# mosquitto_passwd's own default. The passwords here are 192-bit random secrets, so key
# stretching adds nothing against guessing, while every CONNECT costs the broker one
# derivation on its single thread (a reconnect storm of a whole fleet must stay cheap).
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12
HASH_BYTES = 64

# A user name becomes a topic level (%u) and a password-file key: no separators, wildcards,
# whitespace or ':' (the password file's separator), and no leading '$' (system topics).
_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class CredentialsError(ValueError):
    """Raised when a station id cannot be an MQTT user name, or a file cannot be read."""


def check_user_name(name: str) -> str:
    if not _USER_NAME.match(name):
        raise CredentialsError(
            f"{name!r} cannot be an MQTT user name: use letters, digits, '.', '_' or '-' "
            "(at most 64, starting with a letter or digit)"
        )
    return name


def generate_password() -> str:
    """A new random password: 24 random bytes, URL-safe base64 (32 characters)."""
    return secrets.token_urlsafe(24)


def hash_password(
    password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None
) -> str:
    """mosquitto 2.0's password hash: ``$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512>``."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, HASH_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a ``$7$`` (or mosquitto 1.x ``$6$`` SHA-512) hash."""
    parts = encoded.split("$")
    if len(parts) == 5 and parts[1] == "7":
        iterations, salt, digest = int(parts[2]), parts[3], parts[4]
        expected = base64.b64decode(digest)
        actual = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt), iterations, len(expected)
        )
        return hmac.compare_digest(actual, expected)
    if len(parts) == 4 and parts[1] == "6":
        salt_bytes, expected = base64.b64decode(parts[2]), base64.b64decode(parts[3])
        actual = hashlib.sha512(password.encode() + salt_bytes).digest()
        return hmac.compare_digest(actual, expected)
    return False


def read_password_file(path: Path) -> dict[str, str]:
    """``user -> hash`` of an existing mosquitto password file (empty if there is none)."""
    if not path.exists():
        return {}
    entries: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, encoded = line.partition(":")
        if not sep or not encoded:
            raise CredentialsError(f"{path}:{number}: not 'user:hash'")
        entries[user] = encoded
    return entries


def render_password_file(entries: Mapping[str, str]) -> str:
    return "".join(f"{user}:{entries[user]}\n" for user in sorted(entries))


def render_acl(ledger_user: str = LEDGER_USER) -> str:
    replies = "\n".join(f"topic write {ROOT}/+/{topic}" for topic in REPLY_TOPICS)
    return f"""\
# mosquitto ACL written by `bss stations credentials`.
#
# Every station logs in with its station id as user name; %u is replaced by it, so a
# station may read and write only bss/<its id>/# (PROTOCOL.md: identity comes from the topic).
pattern readwrite {ROOT}/%u/#

# The ledger's ingest reads every station's messages and writes only the replies.
user {ledger_user}
topic read {ROOT}/+/#
{replies}
"""


@dataclass(frozen=True)
class TlsListener:
    """A TLS listener: server certificate and key, and the CA that signed client certificates
    (required only with ``require_certificate``)."""

    port: int
    certfile: Path
    keyfile: Path
    cafile: Path | None = None
    require_certificate: bool = False
    bind: str = ALL_INTERFACES


@dataclass(frozen=True)
class BrokerOptions:
    port: int = 1883
    bind: str | None = None  # default: 127.0.0.1 when TLS serves the stations, else 0.0.0.0
    tls: TlsListener | None = None
    max_queued_messages: int = 100_000
    max_inflight_messages: int = 100
    max_packet_size: int = 256 * 1024


def render_config(folder: Path, options: BrokerOptions) -> str:
    folder = folder.resolve()
    bind = options.bind or ("127.0.0.1" if options.tls else ALL_INTERFACES)
    lines = [
        "# mosquitto 2.0 configuration written by `bss stations credentials` on "
        + datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        + ".",
        "# Station passwords live only as PBKDF2-SHA512 hashes in the password file; the",
        "# clear passwords were printed once, when they were generated.",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {folder / 'passwd'}",
        f"acl_file {folder / 'acl'}",
        "",
        f"listener {options.port} {bind}",
    ]
    if options.tls is None and bind not in ("127.0.0.1", "localhost", "::1"):
        lines.append("# No TLS: passwords and messages cross the network in clear text.")
    tls = options.tls
    if tls is not None:
        lines += [
            "",
            f"listener {tls.port} {tls.bind}",
            f"certfile {tls.certfile.resolve()}",
            f"keyfile {tls.keyfile.resolve()}",
        ]
        if tls.cafile is not None:
            lines.append(f"cafile {tls.cafile.resolve()}")
        if tls.require_certificate:
            lines.append("require_certificate true")
    lines += [
        "",
        "# The default 1000 silently drops QoS 1 messages to a subscriber that falls behind",
        "# (the ledger's ingest during a burst, or while it restarts with a persistent session).",
        f"max_queued_messages {options.max_queued_messages}",
        f"max_inflight_messages {options.max_inflight_messages}",
        "# Replies are small packets sent right after acknowledgements: without this, Nagle's",
        "# algorithm holds them for the peer's delayed ACK (~40 ms on Linux).",
        "set_tcp_nodelay true",
        "# The ledger rejects payloads over 64 KiB itself; the broker refuses absurd ones.",
        f"max_packet_size {options.max_packet_size}",
        "",
        "# Persistent sessions and queued QoS 1 messages survive a broker restart.",
        "persistence true",
        f"persistence_location {folder / 'data'}/",
        "autosave_interval 30",
        "",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class Issued:
    """What ``write_credentials`` did: new passwords (shown once), and the files it wrote."""

    passwords: dict[str, str] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    folder: Path = Path()

    @property
    def config(self) -> Path:
        return self.folder / "mosquitto.conf"

    @property
    def password_file(self) -> Path:
        return self.folder / "passwd"

    @property
    def acl_file(self) -> Path:
        return self.folder / "acl"


def _write(path: Path, text: str, mode: int) -> None:
    """Write atomically with ``mode`` from the start (a password file is never world-readable,
    not even for a moment)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_credentials(
    folder: Path,
    station_ids: Iterable[str],
    *,
    ledger_user: str = LEDGER_USER,
    rotate_ledger: bool = False,
    options: BrokerOptions | None = None,
) -> Issued:
    """Create or update the broker's files in ``folder`` for these stations.

    Named stations get a new password (created, or rotated); other users already in the
    password file keep theirs. The ledger's user gets one when missing or ``rotate_ledger``.
    """
    check_user_name(ledger_user)
    stations = list(dict.fromkeys(check_user_name(str(s)) for s in station_ids))
    if ledger_user in stations:
        raise CredentialsError(f"station id {ledger_user!r} is the ledger's user name")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "data").mkdir(exist_ok=True)
    issued = Issued(folder=folder)
    entries = read_password_file(issued.password_file)
    wanted = list(stations)
    if rotate_ledger or ledger_user not in entries:
        wanted.insert(0, ledger_user)
    for user in wanted:
        password = generate_password()
        entries[user] = hash_password(password)
        issued.passwords[user] = password
    issued.kept = sorted(set(entries) - set(issued.passwords))
    _write(issued.password_file, render_password_file(entries), 0o600)
    _write(issued.acl_file, render_acl(ledger_user), 0o644)
    _write(issued.config, render_config(folder, options or BrokerOptions()), 0o644)
    return issued


def read_passwords(path: Path) -> dict[str, str]:
    """``user -> password`` from what the CLI printed (``user password`` per line; ``#``
    comments and blank lines ignored): how the simulator logs its stations in."""
    passwords: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2:
            raise CredentialsError(f"{path}:{number}: expected 'user password'")
        passwords[parts[0]] = parts[1]
    return passwords
