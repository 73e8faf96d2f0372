"""Personal data erasure in the domain: the rider stays, the personal fields go."""

from __future__ import annotations

import pytest

from domain.base import InvalidTransition, NotFound
from domain.battery import Battery
from domain.commands import EraseRider, UpdateRider
from domain.rider import ERASED, Rider

pytestmark = pytest.mark.unit


def test_erasure_blanks_the_personal_fields_and_keeps_everything_else(world) -> None:
    world.ready()
    outcome = world.when(EraseRider, rider_id="R1", reason="GDPR request")
    assert outcome.ok
    assert world.then() == ["Rider.Erased"]
    rider = world.get(Rider, "R1")
    assert rider.personal == ERASED
    assert rider.erased is True
    assert rider.batteries == ["B9"]
    assert world.get(Battery, "B9").custody == {"kind": "rider", "rider_id": "R1"}
    assert "Rider 1" not in repr(outcome.to_dict())


def test_an_erased_rider_still_swaps_but_cannot_be_given_personal_data_again(world) -> None:
    world.ready()
    world.given(EraseRider, rider_id="R1")
    with world.raises(InvalidTransition):
        world.when(UpdateRider, rider_id="R1", personal={"name": "Back again"})
    world.when(UpdateRider, rider_id="R1", vehicle="e-bike")  # non-personal fields still change
    assert world.get(Rider, "R1").vehicle == "e-bike"
    with world.raises(InvalidTransition):
        world.when(EraseRider, rider_id="R1")


def test_erasing_an_unknown_rider_is_refused(world) -> None:
    world.ready()
    with world.raises(NotFound, "rider_id"):
        world.when(EraseRider, rider_id="nobody")


def test_replaying_an_erased_riders_stream_rebuilds_the_same_state(world) -> None:
    world.ready()
    world.given(EraseRider, rider_id="R1")
    replayed = Rider.replay(world.stream("rider:R1"))
    assert replayed is not None
    assert replayed.state() == world.get(Rider, "R1").state()
