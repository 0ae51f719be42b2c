"""A state field's table (burgermelding_shared.workflow): what it lets through, and what it refuses."""

from __future__ import annotations

from enum import StrEnum

import pytest

from burgermelding_shared.workflow import IllegalTransition, Workflow


class Light(StrEnum):
    RED = "red"
    GREEN = "green"
    AMBER = "amber"


LIGHTS = Workflow[Light]("a light", {Light.RED: {Light.GREEN}, Light.GREEN: {Light.AMBER}, Light.AMBER: {Light.RED}})


def test_a_move_in_the_table_and_staying_put_are_allowed() -> None:
    assert LIGHTS.move("red", Light.GREEN) is Light.GREEN
    assert LIGHTS.move(Light.AMBER, Light.AMBER) is Light.AMBER


def test_a_move_outside_the_table_or_from_an_unknown_state_is_refused() -> None:
    with pytest.raises(IllegalTransition, match="a light cannot go from red to amber"):
        LIGHTS.move("red", Light.AMBER)
    with pytest.raises(IllegalTransition, match="no state 'blue'"):
        LIGHTS.move("blue", Light.RED)
    assert not LIGHTS.allows("green", Light.RED)


def test_a_table_naming_a_state_without_a_row_of_its_own_is_refused() -> None:
    with pytest.raises(ValueError, match="amber"):
        Workflow[Light]("a broken light", {Light.RED: {Light.AMBER}})
