"""API tokens: made by ``bss tokens create``, shown once, kept only as a SHA-256 hash.

A token reads ``bss_<token_id>_<secret>``: ``token_id`` (public, 12 hex digits) finds the row,
the 256-bit ``secret`` proves possession. The stored hash is compared in constant time.
Verified tokens are cached for ``CACHE_SECONDS``, so a revocation takes effect within that
time in every API process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, select, update
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Engine

CACHE_SECONDS = 2.0

metadata = MetaData()
api_tokens = Table(
    "bss_api_tokens",
    metadata,
    Column("token_id", String(16), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("created_at", DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")),
    Column("revoked_at", DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")),
)


class Role(StrEnum):
    """Who a token speaks for (docs/api.md has the table of what each may do)."""

    admin = "admin"
    operator = "operator"
    auditor = "auditor"
    analyst = "analyst"


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    name: str
    role: Role
    created_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _parse(token: str) -> str | None:
    """The token id of a well-formed token, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != "bss" or len(parts[1]) != 12 or not parts[2]:
        return None
    return parts[1]


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


class TokenStore:
    """Create, list, revoke and verify tokens in ``bss_api_tokens``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._cache: dict[str, tuple[float, str, TokenInfo]] = {}
        self._lock = threading.Lock()

    def create(self, role: Role | str, name: str) -> tuple[TokenInfo, str]:
        """Make a token; returns its record and the token itself (the only time it exists)."""
        role = Role(role)
        name = name.strip()
        if not name:
            raise ValueError("a token needs a name")
        token_id = secrets.token_hex(6)
        token = f"bss_{token_id}_{secrets.token_urlsafe(32)}"
        now = datetime.now(UTC).replace(tzinfo=None)
        with self.engine.begin() as conn:
            conn.execute(
                insert(api_tokens).values(
                    token_id=token_id,
                    name=name[:100],
                    role=role.value,
                    token_hash=hash_token(token),
                    created_at=now,
                    revoked_at=None,
                )
            )
        return TokenInfo(token_id, name[:100], role, _utc(now), None), token

    def list_tokens(self) -> list[TokenInfo]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(api_tokens).order_by(api_tokens.c.created_at)).all()
        return [
            TokenInfo(r.token_id, r.name, Role(r.role), _utc(r.created_at), _utc(r.revoked_at))
            for r in rows
        ]

    def revoke(self, token_id_or_name: str) -> list[str]:
        """Revoke the token with this id (or every active token with this name)."""
        now = datetime.now(UTC).replace(tzinfo=None)
        c = api_tokens.c
        with self.engine.begin() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    select(c.token_id).where(
                        ((c.token_id == token_id_or_name) | (c.name == token_id_or_name))
                        & c.revoked_at.is_(None)
                    )
                )
            ]
            if ids:
                conn.execute(update(api_tokens).where(c.token_id.in_(ids)).values(revoked_at=now))
        with self._lock:
            for token_id in ids:
                self._cache.pop(token_id, None)
        return ids

    def is_cached(self, token: str) -> bool:
        """Whether :meth:`verify` can answer without the database."""
        token_id = _parse(token)
        if token_id is None:
            return True
        with self._lock:
            cached = self._cache.get(token_id)
        return cached is not None and cached[0] >= time.monotonic()

    def verify(self, token: str) -> TokenInfo | None:
        """The active token this is, or None (unknown, malformed, revoked or wrong secret)."""
        token_id = _parse(token)
        if token_id is None:
            return None
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(token_id)
        if cached is None or cached[0] < now:
            cached = self._load(token_id, now)
        _, stored_hash, info = cached
        if not hmac.compare_digest(hash_token(token), stored_hash):
            return None
        return info if info.active else None

    def _load(self, token_id: str, now: float) -> tuple[float, str, TokenInfo]:
        with self.engine.connect() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.token_id == token_id)).first()
        if row is None:
            # Unknown ids are cached too, so guessing cannot make every request hit the database.
            entry = (now + CACHE_SECONDS, "", TokenInfo(token_id, "", Role.analyst, None, now_dt()))
        else:
            info = TokenInfo(
                row.token_id, row.name, Role(row.role), _utc(row.created_at), _utc(row.revoked_at)
            )
            entry = (now + CACHE_SECONDS, row.token_hash, info)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token_id] = entry
        return entry


def now_dt() -> datetime:
    return datetime.now(UTC)
