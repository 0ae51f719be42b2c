"""dispatch-bridge's tables: what it knows of each report, and the incidents it forwards."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Integer, String, Text
from sqlmodel import Field, SQLModel

from burgermelding_shared.auditchain import audit_tables
from burgermelding_shared.contracts import IncidentStatus
from burgermelding_shared.db import new_registry
from burgermelding_shared.messaging import messaging_tables
from burgermelding_shared.retention import deletion_log_table
from burgermelding_shared.timeutil import UTCDateTime
from burgermelding_shared.urgency import MeldkamerPriority
from dispatch_bridge.states import DeliveryState, ReportState

bridge_registry = new_registry()


class BridgeTable(SQLModel, registry=bridge_registry):
    pass


metadata = bridge_registry.metadata
messaging = messaging_tables(metadata)
audit = audit_tables(metadata, "dispatch-bridge")  # who looked at or did what: every view and every action
deletions = deletion_log_table(metadata)


class BridgeReport(BridgeTable, table=True):
    __tablename__ = "bridge_reports"

    report_id: str = Field(primary_key=True, max_length=36)
    reference: str = Field(max_length=32)
    category: str = Field(max_length=40)
    in_progress: bool
    danger_to_life: bool
    submission: str = Field(sa_column=Column(Text, nullable=False))  # ReportSubmitted, JSON
    received_at: datetime = Field(sa_type=UTCDateTime)
    revision: int = 0
    state: ReportState = Field(sa_column=Column(String(32), nullable=False))  # states.REPORT_STATES
    verified_revision: int = -1
    verdict: str | None = Field(default=None, max_length=16)
    score: float | None = None
    verification: str | None = Field(default=None, sa_column=Column(Text))  # VerificationCompleted, JSON
    group_id: str | None = Field(default=None, sa_column=Column(String(36), index=True))  # its event, if grouped
    incident_id: str | None = Field(default=None, sa_column=Column(String(36), index=True))
    verified_assessment: int = 0  # verification may assess a revision again as more witnesses come
    # Where and when it was seen, and the sender's daily pseudonym: to place it in its event and to count the
    # event's independent witnesses. The pseudonym is never shown.
    lat: float | None = None
    lon: float | None = None
    observed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    submitter_tag: str | None = Field(default=None, max_length=64)
    submitter_kind: str | None = Field(default=None, max_length=16)
    # Set when the report answers a Burgernet action or witness call: it updates that action's incident.
    appeal_id: str | None = Field(default=None, sa_column=Column(String(36), index=True))


class Incident(BridgeTable, table=True):
    """One incident at the meldkamer; `id` is the STA-024 requestId, the same on every retry."""

    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_delivery_state", "delivery_state"),
        Index("ix_incidents_last_seen", "last_seen"),
    )

    id: str = Field(primary_key=True, max_length=36)
    category: str = Field(max_length=40)
    priority: MeldkamerPriority = Field(sa_column=Column(Integer, nullable=False))
    delivery_state: DeliveryState = Field(sa_column=Column(String(16), nullable=False))  # states.DELIVERY_STATES
    delivery_cause: str | None = None
    meldkamer_incident_id: str | None = Field(default=None, max_length=64)
    operational_status: IncidentStatus | None = Field(default=None, sa_column=Column(String(32)))  # the meldkamer's
    callback_sequence: int = -1
    # When the citizen of an urgent report was told to call 112 because the meldkamer had not accepted in time.
    call_112_sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The event it stands for (burgermelding_shared.events): reports that belong to it join it, not a new one.
    family: str | None = Field(default=None, max_length=24)
    lat: float | None = None
    lon: float | None = None
    first_seen: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_seen: datetime | None = Field(default=None, sa_type=UTCDateTime)
    summary_version: int = 0  # of the EventSummary last sent to the meldkamer
    # Its place in words for the dispatchers: the address nearest to (address_lat, address_lon), the centre it
    # was asked for, and how far that address is from it. Filled in the background (incidents/addresses.py),
    # never on the way to the meldkamer; asked again when the centre moves. Asked, nothing near: address None.
    address: str | None = Field(default=None, max_length=200)
    address_distance_m: float | None = None
    address_lat: float | None = None
    address_lon: float | None = None
    merged_into: str | None = Field(default=None, max_length=36)  # it turned out to be part of that incident
    # A dispatcher split it off that incident (a different event): the automatic merges keep the two apart.
    split_from: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)

    @property
    def urgent(self) -> bool:
        """Prio 1: an urgent report made or joined it (`is_urgent`)."""
        return self.priority == MeldkamerPriority.URGENT


class CallerLink(BridgeTable, table=True):
    """A one-time link a dispatcher sent a caller by SMS, to share photos and video of an incident (issue #33).
    The caller's number is never kept: while the link lives, a keyed hash of it (to tell a second link to the same
    phone) and its last two digits (for the dispatcher's screen); both go when the link ends."""

    __tablename__ = "caller_links"

    id: str = Field(primary_key=True, max_length=36)
    incident_id: str = Field(sa_column=Column(String(36), nullable=False, index=True))
    phone_hash: str | None = Field(default=None, max_length=64)
    phone_last2: str | None = Field(default=None, max_length=2)
    language: str = Field(max_length=2)
    ask: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(max_length=16)  # callers.links.LinkState
    files: int = 0
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    state_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # revoked or expired
    # The caller's last files that were not taken, as they were told why (contracts.RefusalSaid as JSON); cleared
    # when files arrive.
    refused: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class BridgeMessage(BridgeTable, table=True):
    """A message between dispatcher and citizen, as the bridge carried it."""

    __tablename__ = "bridge_messages"

    id: str = Field(primary_key=True, max_length=64)
    report_id: str = Field(sa_column=Column(String(36), nullable=False, index=True))
    direction: str = Field(max_length=16)  # to_citizen | from_citizen
    text: str
    in_reply_to: str | None = Field(default=None, max_length=64)
    author: str | None = Field(default=None, max_length=100)  # the dispatcher, for questions asked in our API
    sent_at: datetime = Field(sa_type=UTCDateTime)


class Dispatcher(BridgeTable, table=True):
    """A user of the dispatchers' API."""

    __tablename__ = "dispatchers"

    username: str = Field(primary_key=True, max_length=64)
    password_hash: str = Field(max_length=255)
    role: str = Field(max_length=16)  # dispatcher | supervisor
    disabled: bool = False
    created_at: datetime = Field(sa_type=UTCDateTime)
    # Goes up when the account is disabled, enabled, or given a new password or role: tokens and console sessions
    # carry the epoch they were issued at and end when it moves on (auth.still_current).
    epoch: int = 0


class LegalHold(BridgeTable, table=True):
    """An incident marked as evidence by a supervisor: its reports are kept, everywhere, until it is lifted."""

    __tablename__ = "legal_holds"

    id: str = Field(primary_key=True, max_length=36)
    incident_id: str = Field(sa_column=Column(String(36), nullable=False, index=True))
    reason: str = Field(max_length=300)
    set_by: str = Field(max_length=64)
    set_at: datetime = Field(sa_type=UTCDateTime)
    lifted_by: str | None = Field(default=None, max_length=64)
    lifted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Grows with every change intake must hear of (set: 1, lifted: 2): a late message about an older version
    # (an "extend" queued before the lift) cannot set the hold again (holds.py).
    version: int = 1
    # A hold that followed a merge or a split from another incident's hold names that hold.
    follows_hold: str | None = Field(default=None, max_length=36)


class BurgernetAction(BridgeTable, table=True):
    """A Burgernet action or witness call: the police ask the citizens in an area (burgernet.py). `document` is
    the `PublishedAction` as intake serves it to the apps; the columns are what the bridge queries."""

    __tablename__ = "burgernet_actions"
    __table_args__ = (Index("ix_burgernet_actions_status_closes", "status", "closes_at"),)

    id: str = Field(primary_key=True, max_length=36)
    number: int = Field(sa_column=Column(Integer, unique=True, nullable=False))  # makes the reference BN-...
    reference: str = Field(max_length=32)
    kind: str = Field(max_length=16)  # an ActionKind
    incident_id: str = Field(sa_column=Column(String(36), nullable=False, index=True))
    status: str = Field(max_length=16)  # an ActionStatus
    outcome: str | None = Field(default=None, max_length=16)
    version: int = 1
    document: str = Field(sa_column=Column(Text, nullable=False))  # PublishedAction, JSON
    started_by: str = Field(max_length=64)
    started_at: datetime = Field(sa_type=UTCDateTime)
    closes_at: datetime = Field(sa_type=UTCDateTime)
    closed_by: str | None = Field(default=None, max_length=64)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    first_sighting_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class BurgernetPhoto(BridgeTable, table=True):
    """A photo published for the public with a Burgernet action: the sanitised copy (no metadata) a dispatcher
    uploaded through POST /v1/dispatch/burgernet/photos, and who did. An action can name only these, so no
    citizen's original can ever be published by naming its digest."""

    __tablename__ = "burgernet_photos"

    sha256: str = Field(primary_key=True, max_length=64)
    size_bytes: int
    sha1: str = Field(max_length=40)
    original_sha256: str = Field(max_length=64)  # what was uploaded, for the audit; never published
    uploaded_by: str = Field(max_length=64)
    uploaded_at: datetime = Field(sa_type=UTCDateTime)


class ConsoleSession(BridgeTable, table=True):
    """A dispatcher logged in to the console. The browser holds only a random token in a cookie; this row holds
    its hash, so a leaked database does not hand out sessions. Ended on logout, after inactivity, or when the
    account is disabled, enabled, or given a new password or role."""

    __tablename__ = "console_sessions"

    token_sha256: str = Field(primary_key=True, max_length=64)
    username: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    csrf_token: str = Field(max_length=64)  # sent back with every change: a form field or X-CSRF-Token header
    language: str = Field(default="nl", max_length=2)
    created_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    account_epoch: int = 0  # the account's epoch at login: the session ends when it moves on


class KnownLoginSource(BridgeTable, table=True):
    """A source a user name logged in from with the right password, and when it last did: the login throttle's
    ceiling delays tries from here but never refuses them (auth.py). Kept in the database, so that a restart, a
    deploy or Redis being away does not make every desk a stranger (and the ceiling a lock anyone can turn).
    The name and the source (an address, an IPv6 one by its /64) are kept only as keyed hashes
    (`auth.Pseudonyms`), never as typed or seen; a row older than `login_known_source_days` counts for nothing
    and is removed at the next good login."""

    __tablename__ = "known_login_sources"

    name_hmac: str = Field(primary_key=True, max_length=32)
    source_hmac: str = Field(primary_key=True, max_length=32)
    last_login_at: datetime = Field(sa_type=UTCDateTime, index=True)
