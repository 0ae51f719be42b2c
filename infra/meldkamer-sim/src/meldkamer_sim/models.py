"""The simulated meldkamer's own store."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Integer, String, Text
from sqlmodel import Field, SQLModel

from burgermelding_shared.db import new_registry
from burgermelding_shared.messaging import messaging_tables
from burgermelding_shared.timeutil import UTCDateTime

meldkamer_registry = new_registry()


class MeldkamerTable(SQLModel, registry=meldkamer_registry):
    pass


metadata = meldkamer_registry.metadata
messaging = messaging_tables(metadata)


class SimIncident(MeldkamerTable, table=True):
    __tablename__ = "incidents"

    number: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    incident_id: str = Field(sa_column=Column(String(32), unique=True, nullable=False))
    request_id: str = Field(sa_column=Column(String(64), unique=True, nullable=False))
    incident_type: str = Field(max_length=40)
    priority_number: int
    status: str = Field(max_length=32)
    # The sequence of the script's status change the bridge last confirmed: a callback confirmed late (sent
    # again after a crash, or overtaken) must not set an older status over a newer one.
    status_sequence: int = Field(default=-1, sa_column=Column(Integer, nullable=False, server_default="-1"))
    eido: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    # pending | verified | failed | none ; what came of fetching the photos and checking their digests
    photos_state: str = Field(max_length=16)
    photos_detail: str | None = None
    # The event as the bridge last summed it up (JSON EventSummary), and which version that was.
    event_summary: str | None = Field(default=None, sa_column=Column(Text))
    summary_version: int = Field(default=0, sa_column=Column(Integer, nullable=False, server_default="0"))
    # When the incident turned out to be part of another: that incident's number (as a dispatcher merges them).
    merged_into: str | None = Field(default=None, max_length=32)


class SimIncidentUpdate(MeldkamerTable, table=True):
    """News on an incident from the bridge, applied once per updateId."""

    __tablename__ = "incident_updates"

    update_id: str = Field(primary_key=True, max_length=64)
    incident_id: str = Field(sa_column=Column(String(32), nullable=False, index=True))
    kind: str = Field(max_length=32)
    notes: str | None = None
    media: str | None = Field(default=None, sa_column=Column(Text))  # JSON list of mediaComponents
    urgent: bool = False  # to be seen at once (a sighting of a live Burgernet search)
    received_at: datetime = Field(sa_type=UTCDateTime)
