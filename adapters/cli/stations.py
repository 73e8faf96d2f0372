"""``bss stations``: station trust on the broker (credentials, ACL, mosquitto configuration)."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console

from ledger.settings import get_settings

app = typer.Typer(help="Stations on the broker: MQTT credentials and ACL.", no_args_is_help=True)
err = Console(stderr=True)


def _split(values: list[str]) -> list[str]:
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def registered_station_ids(database_url: str) -> list[str]:
    """Every station id the event store knows (from the streams, no read model needed)."""
    from sqlalchemy import select

    from adapters.store import open_store
    from adapters.store.schema import events

    store = open_store(database_url)
    try:
        query = (
            select(events.c.originator_id)
            .where(events.c.originator_id.like("station:%"))
            .where(events.c.originator_version == 1)
        )
        with store.engine.connect() as conn:
            ids = [str(row[0]).split(":", 1)[1] for row in conn.execute(query)]
    finally:
        store.close()
    return sorted(ids, key=lambda s: (len(s), s))


@app.command("credentials")
def credentials(
    out: Path = typer.Option(..., "--out", help="Folder for mosquitto.conf, passwd and acl."),
    stations: list[str] = typer.Option(
        [], "--stations", "-s", help="Station ids (comma-separated, repeatable)."
    ),
    all_stations: bool = typer.Option(
        False, "--all", help="Every station registered in the ledger."
    ),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Event store for --all (default: BSS_DATABASE_URL)."
    ),
    ledger_user: str = typer.Option("bss-ledger", help="MQTT user of the ledger's ingest."),
    rotate_ledger: bool = typer.Option(False, help="Give the ledger's user a new password."),
    port: int = typer.Option(1883, help="Plain MQTT listener port."),
    bind: str | None = typer.Option(
        None, help="Address of the plain listener (default 127.0.0.1 with TLS, else 0.0.0.0)."
    ),
    tls_port: int = typer.Option(8883, help="TLS listener port (with --tls-cert/--tls-key)."),
    tls_cert: Path | None = typer.Option(None, help="Server certificate (PEM) for TLS."),
    tls_key: Path | None = typer.Option(None, help="Server private key (PEM) for TLS."),
    tls_ca: Path | None = typer.Option(None, help="CA of client certificates (PEM)."),
    require_certificate: bool = typer.Option(
        False, help="TLS clients must present a certificate signed by --tls-ca."
    ),
) -> None:
    """Write a mosquitto config, password file and ACL; print new passwords ONCE.

    Each station logs in with its id as user name and may read and write only
    bss/<its id>/#. New passwords go to standard output as 'user password' lines (redirect
    them to provision stations, or to `bss simulate --passwords FILE`); the broker keeps only
    their PBKDF2-SHA512 hashes. Naming a station that already has a password rotates it.
    """
    from adapters.mqtt.credentials import (
        BrokerOptions,
        CredentialsError,
        TlsListener,
        write_credentials,
    )

    ids = _split(stations)
    if all_stations:
        ids += registered_station_ids(database_url or get_settings().database_url)
    if not ids and not all_stations and not (out / "passwd").exists():
        err.print("[red]name stations with --stations, or use --all[/red]")
        raise typer.Exit(2)
    if (tls_cert is None) != (tls_key is None):
        err.print("[red]--tls-cert and --tls-key go together[/red]")
        raise typer.Exit(2)
    if require_certificate and tls_ca is None:
        err.print("[red]--require-certificate needs --tls-ca[/red]")
        raise typer.Exit(2)
    tls = None
    if tls_cert is not None and tls_key is not None:
        tls = TlsListener(tls_port, tls_cert, tls_key, tls_ca, require_certificate)
    try:
        issued = write_credentials(
            out,
            ids,
            ledger_user=ledger_user,
            rotate_ledger=rotate_ledger,
            options=BrokerOptions(port=port, bind=bind, tls=tls),
        )
    except CredentialsError as error:
        err.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    for user, password in issued.passwords.items():
        sys.stdout.write(f"{user} {password}\n")
    sys.stdout.flush()
    err.print(
        f"wrote {issued.config}, {issued.password_file} (hashes only) and {issued.acl_file}; "
        f"{len(issued.passwords)} new password(s) printed above, shown this once; "
        f"{len(issued.kept)} existing user(s) kept."
    )
    if ledger_user in issued.passwords:
        err.print(f"ledger: BSS_MQTT_USERNAME={ledger_user} BSS_MQTT_PASSWORD=<its line above>")
    err.print(f"start the broker: mosquitto -c {issued.config}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="stations")
