"""The MariaDB server a benchmark runs on: ``BSS_BENCH_DATABASE_URL`` (a server URL whose user
may create databases), else a private server started in a temporary folder and stopped when
the benchmark ends (tests/support/services.py; the password is made at run time)."""

from __future__ import annotations

import atexit
import os
import secrets
import tempfile

from sqlalchemy.engine import make_url

ENV = "BSS_BENCH_DATABASE_URL"
_started: str | None = None


def server_url() -> str:
    """A server URL without a database part (``mysql+pymysql://user:pw@host:port/``)."""
    global _started
    configured = os.environ.get(ENV)
    if configured:
        return configured
    if _started is None:
        from tests.support.services import MariaDB

        folder = tempfile.mkdtemp(prefix="bss-bench-")
        server = MariaDB(folder).start()
        atexit.register(lambda: (server.stop(), server.cleanup(True)))
        url = make_url(server.url).set(database="").render_as_string(hide_password=False)
        _started = url
        print(f"(a private MariaDB for this run; set {ENV} to use another server)")
    return _started


def new_database(server_url: str, prefix: str = "bench") -> str:
    """A fresh utf8mb4 database (``<prefix>_<random>``) on the server of ``server_url``;
    returns its URL."""
    import pymysql

    url = make_url(server_url)
    name = f"{prefix}_{secrets.token_hex(4)}"
    conn = pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username,
        password=url.password or "",
        autocommit=True,
    )
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
    finally:
        conn.close()
    return url.set(database=name).render_as_string(hide_password=False)
