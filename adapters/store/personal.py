"""Riders' personal fields, encrypted with a key of each rider's own (crypto-shredding).

A rider's ``personal`` dict (name, email, phone, address, licence) is stored in the events as
AES-256-GCM ciphertext under a random 256-bit key that belongs to that rider alone
(``bss_rider_keys``). Erasing the rider deletes the key in the same transaction as the
``Rider.Erased`` event: every earlier event still replays, and its personal fields read as
erased everywhere, read models included. No key, no plaintext; nothing else is encrypted.

With ``SECRET_KEY`` set, the rider keys are themselves wrapped (AES-256-GCM under a key
derived from it with HKDF), so a copy of the database alone reveals no personal data. Without
it (the demo) the keys are stored as they are, and a warning says so.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from domain.rider import ERASED

if TYPE_CHECKING:
    from adapters.store.recorder import LedgerRecorder

log = logging.getLogger(__name__)

SEALED = "_sealed_"  # key of the stored dict that replaces the plaintext personal fields
_FORMAT = b"\x01"  # version byte of a sealed value: nonce (12) + ciphertext with tag
RAW, WRAPPED = 0, 1  # how a rider key is kept in bss_rider_keys


class PersonalDataError(Exception):
    """Raised when sealed personal data cannot be opened although its key exists (a wrong
    SECRET_KEY, or a corrupted value): never silently shown as erased."""


class PersonalVault:
    """Seals and opens riders' personal fields with their keys, cached for ``ttl`` seconds
    (so an erasure made by another process is seen here within ``ttl``)."""

    def __init__(self, recorder: LedgerRecorder, secret: str | None, ttl: float = 10.0) -> None:
        self.recorder = recorder
        self.ttl = ttl
        self._kek = _derive(secret) if secret else None
        self._cache: dict[str, tuple[bytes | None, float]] = {}
        self._lock = threading.Lock()
        self._warned = False

    # --- sealing ----------------------------------------------------------------------------

    def seal(self, rider_id: str, personal: dict[str, Any]) -> str:
        key = self._key(rider_id, create=True)
        assert key is not None
        nonce = os.urandom(12)
        ciphertext = AESGCM(key).encrypt(nonce, orjson.dumps(personal), rider_id.encode())
        return base64.b64encode(_FORMAT + nonce + ciphertext).decode("ascii")

    def open(self, rider_id: str, sealed: str) -> dict[str, Any]:
        key = self._key(rider_id, create=False)
        if key is None:
            return dict(ERASED)
        raw = base64.b64decode(sealed)
        if raw[:1] != _FORMAT:
            raise PersonalDataError(f"unknown sealed format for rider {rider_id}")
        try:
            plaintext = AESGCM(key).decrypt(raw[1:13], raw[13:], rider_id.encode())
        except InvalidTag as error:
            raise PersonalDataError(f"personal data of rider {rider_id} does not open") from error
        opened: dict[str, Any] = orjson.loads(plaintext)
        return opened

    def forget(self, rider_ids: list[str]) -> None:
        with self._lock:
            for rider_id in rider_ids:
                self._cache[rider_id] = (None, time.monotonic())

    # --- keys -------------------------------------------------------------------------------

    def _key(self, rider_id: str, *, create: bool) -> bytes | None:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(rider_id)
        if cached is not None and now - cached[1] < self.ttl and (cached[0] or not create):
            return cached[0]
        key = self._load(rider_id)
        if key is None and create:
            key = self._create(rider_id)
        with self._lock:
            self._cache[rider_id] = (key, now)
            if len(self._cache) > 100_000:
                self._cache.clear()
        return key

    def _load(self, rider_id: str) -> bytes | None:
        found = self.recorder.get_rider_key(rider_id)
        if found is None:
            return None
        scheme, material = found
        if scheme == RAW:
            return material
        if self._kek is None:
            raise PersonalDataError("rider keys are wrapped: SECRET_KEY is needed to read them")
        try:
            return AESGCM(self._kek).decrypt(material[:12], material[12:], rider_id.encode())
        except InvalidTag as error:
            raise PersonalDataError("SECRET_KEY does not open the rider keys") from error

    def _create(self, rider_id: str) -> bytes:
        key = AESGCM.generate_key(bit_length=256)
        if self._kek is not None:
            nonce = os.urandom(12)
            stored = nonce + AESGCM(self._kek).encrypt(nonce, key, rider_id.encode())
            scheme = WRAPPED
        else:
            if not self._warned:
                log.warning("SECRET_KEY is not set: riders' data keys are stored unwrapped")
                self._warned = True
            stored, scheme = key, RAW
        if not self.recorder.put_rider_key(rider_id, scheme, stored):
            loaded = self._load(rider_id)  # another writer made it first
            assert loaded is not None
            return loaded
        return key


def _derive(secret: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"bss-ledger", info=b"rider keys v1"
    ).derive(secret.encode())
