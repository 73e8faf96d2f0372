"""An RFID card at a station (rules 1-6).

Order of the checks: card (1), rider (2), then rule 6 (a repeat at the same station returns
the open session), payment (3), station (4), batteries (5). Once the card and rider pass,
an open session of that rider elsewhere is cancelled whatever the decision, because the
rider is now here; an open session here older than the timeout is timed out first.
"""

from __future__ import annotations

from datetime import datetime

from domain import rules
from domain import validation as v
from domain.base import Outcome, Repository, Stamp
from domain.battery import Battery
from domain.card import Card
from domain.commands import AuthorizeCard
from domain.handlers.custody import cancel, time_out
from domain.handlers.registry import absent, existing, handles, stamp
from domain.policy import PolicyValues, current_policy
from domain.reasons import Reason
from domain.rider import Rider
from domain.session import SwapSession
from domain.station import Station


def docked_batteries(repo: Repository, station: Station) -> list[Battery]:
    found = (repo.get(Battery, battery_id) for battery_id in station.docked().values())
    return [battery for battery in found if battery is not None]


def _open_session_of(repo: Repository, rider: Rider | None) -> SwapSession | None:
    """The rider's open session, if any."""
    if rider is None or rider.status != "active" or rider.open_session_id is None:
        return None
    session = repo.get(SwapSession, rider.open_session_id)
    return session if session is not None and session.is_open else None


def _decide(
    repo: Repository,
    station: Station,
    rider: Rider,
    session_id: str,
    policy: PolicyValues,
    at: datetime,
) -> Reason | None:
    """Rules 2-5 for a known card."""
    reason = rules.rider_refusal(rider, policy, at) or rules.station_refusal(station)
    if reason is None and not rules.issuable(
        docked_batteries(repo, station), station.key, session_id, policy, assume_charging=True
    ):
        reason = Reason.NO_BATTERY_AVAILABLE
    return reason


@handles(AuthorizeCard)
def authorize_card(cmd: AuthorizeCard, repo: Repository, recorded_at: datetime) -> Outcome:
    station = existing(repo, Station, v.text("station_id", cmd.station_id), "station_id")
    rfid = v.text("rfid_code", cmd.rfid_code)
    session_id = v.text("session_id", cmd.session_id)
    policy, version = current_policy(repo)
    card = repo.get(Card, rfid)
    rider = existing(repo, Rider, card.rider_id, "rider_id") if card is not None else None
    reason = rules.card_refusal(card)
    previous = _open_session_of(repo, rider) if reason is None else None
    if previous is not None and rider is not None:
        expired = previous.expired(cmd.occurred_at, policy.session_timeout_s)
        if previous.station_id == station.key and not expired:  # rule 6: same session again
            return Outcome.accepted(
                session_id=previous.key, rider_id=rider.key, station_id=station.key, repeated=True
            )
    absent(repo, SwapSession, session_id, "session_id")
    at = stamp(cmd, recorded_at)
    if previous is not None:
        if previous.expired(cmd.occurred_at, policy.session_timeout_s):
            time_out(repo, previous, at, policy, version)
        else:
            cancel(repo, previous, at, session_id, version)
    if reason is None and rider is not None:
        reason = _decide(repo, station, rider, session_id, policy, cmd.occurred_at)
    rider_id = None if rider is None else rider.key
    if reason is not None:
        repo.add(
            SwapSession.create(
                session_id,
                SwapSession.AuthDenied,
                at,
                station_id=station.key,
                rfid_code=rfid,
                rider_id=rider_id,
                reason=reason.value,
                policy_version=version,
            )
        )
        return Outcome.refused(reason, session_id=session_id, rider_id=rider_id)
    return _open(repo, station, rider, session_id, rfid, at, version)


def _open(
    repo: Repository,
    station: Station,
    rider: Rider | None,
    session_id: str,
    rfid: str,
    at: Stamp,
    version: int,
) -> Outcome:
    assert rider is not None
    repo.add(
        SwapSession.create(
            session_id,
            SwapSession.CardAuthorized,
            at,
            station_id=station.key,
            rfid_code=rfid,
            rider_id=rider.key,
            policy_version=version,
        )
    )
    station.open_session(at, session_id, rider.key)
    rider.open(at, session_id, station.key)
    return Outcome.accepted(
        session_id=session_id, rider_id=rider.key, station_id=station.key, repeated=False
    )
