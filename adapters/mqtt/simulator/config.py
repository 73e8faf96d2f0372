"""Everything a simulation run is told: the fleet, the pace, the broker, the faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ledger.settings import Settings

Dialect = Literal["v1", "v2", "mixed"]


@dataclass
class SimulatorConfig:
    """Options of ``bss simulate`` (see docs/simulator.md)."""

    stations: int = 10
    riders: int = 100
    swaps: int = 100  # rider visits (card taps) to make; 0: until stopped
    rate: float = 5.0  # visits started per second, whole fleet (Poisson); 0: back to back
    seed: int = 1
    dialect: Dialect = "v2"
    faults: bool = False
    fault_rate: float = 0.1  # with faults: share of visits with a duplicate or a lost reply

    station_prefix: str = ""  # station ids are <prefix>1, <prefix>2, ... ("1", "2" by default)
    slots: int = 12
    fill: float = 0.75  # share of slots holding a battery at registration
    blocked_cards: float = 0.03  # share of riders whose card is blocked
    unknown_cards: float = 0.03  # share of visits made with a card nobody registered
    low_soh_batteries: float = 0.06  # share of batteries under the return SOH minimum
    hot_batteries: float = 0.05  # share of batteries that run hot

    reply_timeout: float = 3.0  # seconds before a request is sent again
    max_retries: int = 3
    v1_initiate_wait: float = 0.3  # a v1 station listens this long for a refused initiate
    charge_rate: float = 5.0  # SOC percent per second while docked (accelerated)
    telemetry_interval: float = 10.0  # seconds between readings of each docked battery (v2)
    heartbeat_interval: float = 15.0  # seconds between station/status heartbeats (v2)
    drain_after: float = 5.0  # seconds to let visits in progress finish when stopping

    host: str = "127.0.0.1"
    port: int = 1883
    passwords: dict[str, str] = field(default_factory=dict)  # station id -> MQTT password
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    keepalive: int = 30

    database_url: str | None = None  # where to register the fleet (None: settings)
    register: bool = True

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> SimulatorConfig:
        config = cls(
            host=settings.mqtt_broker_host,
            port=settings.mqtt_broker_port,
            tls_ca_file=settings.mqtt_tls_ca_file,
            tls_cert_file=settings.mqtt_tls_cert_file,
            tls_key_file=settings.mqtt_tls_key_file,
            database_url=settings.database_url,
        )
        for name, value in overrides.items():
            if not hasattr(config, name):
                raise TypeError(f"no simulator option {name!r}")
            setattr(config, name, value)
        return config

    def validate(self) -> None:
        if self.stations < 1 or self.riders < 1:
            raise ValueError("at least one station and one rider")
        if self.swaps < 0 or self.rate < 0:
            raise ValueError("swaps and rate cannot be negative")
        if self.dialect not in ("v1", "v2", "mixed"):
            raise ValueError(f"dialect must be v1, v2 or mixed, not {self.dialect!r}")
        if not 2 <= self.slots <= 64:
            raise ValueError("slots must be between 2 and 64")
        if not 0 <= self.fault_rate <= 1:
            raise ValueError("fault_rate must be between 0 and 1")
