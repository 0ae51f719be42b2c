"""What the Burgernet routes answer, as documented models: an action as the bridge keeps it (the published document
and who started and closed it), its figures, its answers, and the reply to the meldkamer's request.

The functions in `actions` build plain dicts (the console reads them too); each route names its model here as its
`response_model`, so FastAPI checks the dict against it and the OpenAPI document says what is answered.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from burgermelding_shared.burgernet import Outcome, PublishedAction


class BurgernetActionView(PublishedAction):
    """A Burgernet action or witness call as the bridge keeps it: the document published to the apps (its latest
    version), the incident it belongs to, and who started and who closed it."""

    # An answer, not a message received: the published document's own strictness is not needed here.
    model_config = ConfigDict(extra="ignore")

    incident_id: str = Field(description="the incident it belongs to; answers update it")
    started_by: str = Field(description="the dispatcher (or `meldkamer`) who started it")
    closed_by: str | None = Field(description="who closed or cancelled it (`dispatch-bridge` when its deadline did)")


class BurgernetFigures(BaseModel):
    """How an action did: installations that fetched it, answers, the time to the first one, and the outcome."""

    fetched_by_installations: int | None = Field(
        description="app installations that fetched it (intake's count); null when intake could not be asked"
    )
    fetched_unavailable: bool = Field(description="intake could not be asked how many fetched it")
    answers: int = Field(description="reports that answered it")
    answering_installations: int = Field(description="distinct senders of those answers")
    seconds_to_first_answer: float | None
    outcome: Outcome | None


class BurgernetActionOverview(BurgernetActionView):
    """An action with its figures (in the list of actions)."""

    figures: BurgernetFigures


class BurgernetAnswer(BaseModel):
    """A report that answered an action."""

    report_id: str
    reference: str


class BurgernetActionDetail(BurgernetActionOverview):
    """One action with its figures and the reports that answered it, oldest first."""

    answers: list[BurgernetAnswer]


class DuplicateBurgernetRequest(BaseModel):
    """The meldkamer's request arrived before (the same webhook id): nothing new was started."""

    status: Literal["duplicate"]


# The reply to the meldkamer's request: the action it started (whose `status` is its own, `open`), or that the
# request was a duplicate.
MeldkamerBurgernetReply = BurgernetActionView | DuplicateBurgernetRequest
