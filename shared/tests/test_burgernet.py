"""Burgernet's shared rules: whether a place lies in an action's area, and the CAP 1.2 alert (validated against
the OASIS schema with capvalidator) in every state an action can be in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import capvalidator
import pytest
from pydantic import ValidationError

from burgermelding_shared.burgernet import ActionPhoto, Area, PublishedAction, cap_alert, link_of

UTRECHT = [(52.0950, 5.1050), (52.0950, 5.1350), (52.0830, 5.1350), (52.0830, 5.1050)]
NOW = datetime(2026, 12, 5, 21, 30, tzinfo=UTC)


def action(**changes: object) -> PublishedAction:
    base = PublishedAction(
        action_id="0b7a4c7e-8a51-4c42-9e0f-6f1f1b9d2a11",
        reference="BN-2026-000001",
        version=1,
        kind="action",
        looking_for="missing_child",
        headline_nl="Vermist: meisje (7), rode jas",
        headline_en="Missing: girl (7)",
        description_nl="Lang blond haar & een rode jas <geen tas>",
        description_en="Long blond hair, red coat",
        area=Area(polygon=UTRECHT, description="Utrecht, Binnenstad"),
        started_at=NOW,
        closes_at=NOW + timedelta(minutes=60),
        status="open",
    )
    return base.model_copy(update=changes)


def test_a_polygon_holds_what_is_inside_and_a_little_slack_at_its_edge() -> None:
    area = Area(polygon=UTRECHT)
    assert area.contains(52.0903, 5.1187)  # Vredenburg
    assert not area.contains(52.3731, 4.8926)  # Amsterdam
    assert not area.contains(52.0960, 5.1200)  # about 110 m north of the edge
    assert area.contains(52.0960, 5.1200, slack_m=150)
    # A concave shape: the notch is outside.
    notched = Area(polygon=[(0.0, 0.0), (0.0, 10.0), (10.0, 10.0), (5.0, 5.0), (10.0, 0.0)])
    assert notched.contains(2.0, 5.0) and not notched.contains(8.0, 5.0)


def test_a_circle_and_the_shapes_that_are_refused() -> None:
    circle = Area(circle={"lat": 52.09, "lon": 5.12, "radius_m": 500})
    assert circle.contains(52.0930, 5.1200) and not circle.contains(52.1000, 5.1200)
    for bad in (
        {},
        {"circle": {"lat": 52, "lon": 5, "radius_m": 500}, "polygon": UTRECHT},
        {"polygon": [(52.0, 5.0), (52.0, 5.0), (52.1, 5.1)]},
        {"polygon": [(91.0, 5.0), (52, 5), (53, 6)]},
        {"circle": {"lat": 52, "lon": 5, "radius_m": 10}},
    ):
        with pytest.raises(ValidationError):
            Area.model_validate(bad)


@pytest.mark.parametrize("state", ["open", "open_with_photo", "circle", "closed", "cancelled", "witness_call"])
def test_the_cap_alert_is_valid_cap_1_2_in_every_state(state: str) -> None:
    closed = {
        "version": 2,
        "status": "closed",
        "outcome": "found",
        "closing_nl": "Het meisje is gevonden.",
        "closing_en": "The girl has been found.",
        "closed_at": NOW + timedelta(minutes=20),
    }
    changes: dict[str, object] = {
        "open": {},
        "open_with_photo": {"photo": ActionPhoto(sha256="a" * 64, size_bytes=1234, sha1="b" * 40)},
        "circle": {"area": Area(circle={"lat": 52.09, "lon": 5.12, "radius_m": 1500})},
        "closed": closed,
        "cancelled": {**closed, "status": "cancelled", "outcome": "cancelled"},
        "witness_call": {
            "kind": "witness_call",
            "looking_for": "witnesses",
            "window_start": NOW - timedelta(days=1),
            "window_end": NOW - timedelta(days=1) + timedelta(hours=1),
        },
    }[state]
    xml = cap_alert(
        action(**changes),
        "burgernet@politie.nl",
        "https://burgermelding.example",
        references=["burgernet@politie.nl,first,2026-12-05T21:30:00+00:00"],
    )
    result = capvalidator.check_schema(xml)
    assert result.passed, f"{result.message}\n{xml.decode()}"
    if state in ("closed", "cancelled"):  # an ended alert keeps its closing message, not whom it sought
        assert b"rode jas" not in xml and b"geen tas" not in xml and b"red coat" not in xml
    else:
        assert b"&amp;" in xml and b"&lt;geen tas&gt;" in xml  # the dispatcher's text is escaped, never markup
    if state == "cancelled":
        assert b"<msgType>Cancel</msgType>" in xml and b"<references>" in xml
    if state == "closed":
        assert b"<responseType>AllClear</responseType>" in xml and b"Het meisje is gevonden" in xml
    if state == "open_with_photo":
        assert b"<digest>" + b"b" * 40 + b"</digest>" in xml
    if state == "circle":
        assert b"<circle>52.090000,5.120000 1.500</circle>" in xml


def test_a_broken_alert_is_not_valid() -> None:
    """The check itself can fail: an alert without its identifier is refused by the schema."""
    xml = cap_alert(action(), "burgernet@politie.nl", "https://burgermelding.example")
    broken = xml.replace(b"<identifier>", b"<identifierX>").replace(b"</identifier>", b"</identifierX>")
    assert not capvalidator.check_schema(broken).passed


def test_an_answer_is_asked_about_the_window_of_a_witness_call_and_the_time_of_an_action() -> None:
    live = link_of(action())
    assert (live.window_start, live.window_end, live.is_live_search) == (NOW, NOW + timedelta(minutes=60), True)
    start = NOW - timedelta(days=1)
    call = link_of(action(kind="witness_call", window_start=start, window_end=start + timedelta(hours=1)))
    assert (call.window_start, call.window_end, call.is_live_search) == (start, start + timedelta(hours=1), False)
