"""Every setting of the ledger, from the environment (or a .env file), in one class."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Names follow the original system where it had one (DATABASE_URL, MQTT_BROKER_HOST,
    MQTT_BROKER_PORT, SECRET_KEY); the rest start with BSS_."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    database_url: str = Field(
        default_factory=lambda: f"sqlite:///{Path.cwd() / 'bss-ledger.sqlite'}",
        validation_alias=AliasChoices("BSS_DATABASE_URL", "DATABASE_URL"),
        description="SQLAlchemy URL of the event store and read models: mysql+pymysql://... "
        "or sqlite:///file (the default: bss-ledger.sqlite in the working folder).",
    )
    mqtt_broker_host: str = Field(
        default="127.0.0.1", validation_alias=AliasChoices("MQTT_BROKER_HOST", "BSS_MQTT_HOST")
    )
    mqtt_broker_port: int = Field(
        default=1883, validation_alias=AliasChoices("MQTT_BROKER_PORT", "BSS_MQTT_PORT")
    )
    mqtt_username: str | None = Field(default=None, validation_alias="BSS_MQTT_USERNAME")
    mqtt_password: SecretStr | None = Field(default=None, validation_alias="BSS_MQTT_PASSWORD")
    mqtt_client_id: str = Field(default="bss-ledger-ingest", validation_alias="BSS_MQTT_CLIENT_ID")
    mqtt_tls_ca_file: Path | None = Field(default=None, validation_alias="BSS_MQTT_TLS_CA_FILE")
    mqtt_tls_cert_file: Path | None = Field(default=None, validation_alias="BSS_MQTT_TLS_CERT_FILE")
    mqtt_tls_key_file: Path | None = Field(default=None, validation_alias="BSS_MQTT_TLS_KEY_FILE")
    mqtt_shared_group: str | None = Field(
        default=None,
        validation_alias="BSS_MQTT_SHARED_GROUP",
        description="Subscribe through $share/<group>/... so several ingest processes share load.",
    )
    mqtt_protocol: Literal["5", "3.1.1"] = Field(
        default="5",
        validation_alias="BSS_MQTT_PROTOCOL",
        description="MQTT version of the ingest: 5 (default) or 3.1.1 (brokers without 5).",
    )
    mqtt_session_expiry: int | None = Field(
        default=None,
        validation_alias="BSS_MQTT_SESSION_EXPIRY",
        description="MQTT 5: seconds the broker keeps the ingest's session (default: forever).",
    )
    ingest_deciding: Literal["auto", "process", "thread"] = Field(
        default="auto",
        validation_alias="BSS_INGEST_DECIDING",
        description="Where the MQTT ingest decides and commits: process (a child process, so "
        "receiving and deciding get a core each), thread (in the ingest's own process), or "
        "auto (process on MySQL/MariaDB, thread on SQLite).",
    )
    http_host: str = Field(default="127.0.0.1", validation_alias="BSS_HTTP_HOST")
    http_port: int = Field(default=5000, validation_alias="BSS_HTTP_PORT")
    secret_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SECRET_KEY", "BSS_SECRET_KEY")
    )
    cache_size: int = Field(default=200_000, validation_alias="BSS_CACHE_SIZE")


@lru_cache
def get_settings() -> Settings:
    return Settings()
