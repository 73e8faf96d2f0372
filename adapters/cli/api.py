"""``bss api`` (the HTTP API alone) and ``bss tokens`` (bearer tokens for it)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from ledger.settings import get_settings

tokens_app = typer.Typer(help="Bearer tokens of the HTTP API.", no_args_is_help=True)
console = Console()

ROLES = ("admin", "operator", "auditor", "analyst")


def _store(url: str | None):  # type: ignore[no-untyped-def]
    from adapters.http.tokens import TokenStore
    from adapters.store import open_store

    store = open_store(url or get_settings().database_url, init=True)
    return store, TokenStore(store.engine)


@tokens_app.command("create")
def create(
    role: str = typer.Option(..., "--role", help="admin, operator, auditor or analyst."),
    name: str = typer.Option(..., "--name", help="Who or what the token is for."),
    url: str | None = typer.Option(None, "--url", help="Database URL (default BSS_DATABASE_URL)."),
) -> None:
    """Make a token; it is printed once, on the last line, and only its hash is kept."""
    if role not in ROLES:
        raise typer.BadParameter(f"role must be one of {', '.join(ROLES)}", param_hint="--role")
    store, tokens = _store(url)
    try:
        info, token = tokens.create(role, name)
    finally:
        store.close()
    console.print(
        f"token {info.token_id} for {info.name!r} ({info.role.value}); keep it now,"
        " it is not shown again:",
        style="dim",
    )
    print(token)


@tokens_app.command("list")
def list_tokens(url: str | None = typer.Option(None, "--url")) -> None:
    """List tokens (ids, names, roles, state); the tokens themselves are not stored."""
    store, tokens = _store(url)
    try:
        found = tokens.list_tokens()
    finally:
        store.close()
    table = Table("id", "name", "role", "created", "revoked")
    for info in found:
        table.add_row(
            info.token_id,
            info.name,
            info.role.value,
            f"{info.created_at:%Y-%m-%d %H:%M}" if info.created_at else "",
            f"{info.revoked_at:%Y-%m-%d %H:%M}" if info.revoked_at else "",
        )
    console.print(table)


@tokens_app.command("revoke")
def revoke(
    token: str = typer.Argument(..., help="A token id (from `bss tokens list`) or a name."),
    url: str | None = typer.Option(None, "--url"),
) -> None:
    """Revoke a token (by id, or every active token with that name); effective within 2 s."""
    store, tokens = _store(url)
    try:
        ids = tokens.revoke(token)
    finally:
        store.close()
    if not ids:
        console.print(f"no active token {token!r}", style="red")
        raise typer.Exit(1)
    console.print(f"revoked {', '.join(ids)}")


def api(
    host: str | None = typer.Option(None, "--host", help="Default BSS_HTTP_HOST (127.0.0.1)."),
    port: int | None = typer.Option(None, "--port", help="Default BSS_HTTP_PORT (5000)."),
    public_metrics: bool = typer.Option(
        False,
        "--public-metrics",
        envvar="BSS_METRICS_PUBLIC",
        help="Serve /metrics without a token (default: any valid token).",
    ),
    read_cache_seconds: float = typer.Option(
        0.02,
        "--read-cache-seconds",
        envvar="BSS_READ_CACHE_SECONDS",
        help="Cache answers until their read models move, positions re-read at most this "
        "often; 0 turns the cache off.",
    ),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Processes serving the port (each with its own cache)."
    ),
    access_log: bool = typer.Option(False, "--access-log/--no-access-log"),
) -> None:
    """Serve the HTTP API (queries, admin commands, live streams) with uvicorn."""
    import os

    from adapters.http import ApiOptions, start_api
    from adapters.http.server import open_ledger, run_workers

    settings = get_settings()
    console.print(
        f"bss api on http://{host or settings.http_host}:{port or settings.http_port} "
        f"(OpenAPI at /docs; {workers} worker{'s' if workers > 1 else ''})",
        style="dim",
    )
    if workers > 1:
        # Worker processes build their app from the environment (adapters.http.server).
        os.environ["BSS_METRICS_PUBLIC"] = "1" if public_metrics else "0"
        os.environ["BSS_READ_CACHE_SECONDS"] = str(read_cache_seconds)
        open_ledger(settings).store.close()  # schema and read models once, before forking
        run_workers(settings, workers, host, port, access_log)
        return
    start_api(
        settings,
        host=host,
        port=port,
        options=ApiOptions(metrics_public=public_metrics, read_cache_seconds=read_cache_seconds),
        access_log=access_log,
    )


def register(app: typer.Typer) -> None:
    app.command("api")(api)
    app.add_typer(tokens_app, name="tokens")
