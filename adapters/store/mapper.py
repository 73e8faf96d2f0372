"""Domain events <-> stored events: eventsourcing's Mapper, with its JSON format written by
orjson (see transcoder.py) and riders' personal fields sealed with their own keys (see
personal.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent

from adapters.store.personal import SEALED
from adapters.store.transcoder import OrjsonTranscoder

if TYPE_CHECKING:
    from adapters.store.personal import PersonalVault

RIDER_PREFIX = "rider:"


class LedgerMapper(Mapper[Any]):
    """eventsourcing's Mapper; with a vault, a rider event's ``personal`` dict is stored as
    ``{"_sealed_": <AES-GCM ciphertext>}`` and opened again on the way back (to the erased
    value once the rider's key is gone). Without a vault, sealed data cannot be read."""

    def __init__(self, vault: PersonalVault | None = None) -> None:
        super().__init__(transcoder=OrjsonTranscoder())
        self.vault = vault

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        personal = getattr(domain_event, "personal", None)
        originator_id = str(domain_event.originator_id)
        if (
            self.vault is None
            or not isinstance(personal, dict)
            or not originator_id.startswith(RIDER_PREFIX)
            or all(value is None for value in personal.values())  # nothing to protect
        ):
            return super().to_stored_event(domain_event)
        # The same event with its personal fields sealed, through eventsourcing's own mapping.
        sealed = object.__new__(type(domain_event))
        object.__setattr__(
            sealed,
            "__dict__",
            {
                **vars(domain_event),
                "personal": {SEALED: self.vault.seal(originator_id[len(RIDER_PREFIX) :], personal)},
            },
        )
        return super().to_stored_event(sealed)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        event = super().to_domain_event(stored_event)
        personal = event.__dict__.get("personal")
        if isinstance(personal, dict) and SEALED in personal:
            if self.vault is None:
                raise MapperDeserialisationError(
                    f"{stored_event.originator_id} v{stored_event.originator_version}: sealed "
                    "personal data needs the store's mapper (Store.mapper)"
                )
            rider_id = str(stored_event.originator_id)[len(RIDER_PREFIX) :]
            event.__dict__["personal"] = self.vault.open(rider_id, personal[SEALED])
        return event


def make_mapper(vault: PersonalVault | None = None) -> LedgerMapper:
    return LedgerMapper(vault)
