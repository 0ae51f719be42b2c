"""verification's tables."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, LargeBinary, String, Text
from sqlmodel import Field, SQLModel

from burgermelding_shared.auditchain import audit_tables
from burgermelding_shared.db import new_registry
from burgermelding_shared.messaging import messaging_tables
from burgermelding_shared.retention import deletion_log_table
from burgermelding_shared.timeutil import UTCDateTime

verification_registry = new_registry()


class VerificationTable(SQLModel, registry=verification_registry):
    pass


metadata = verification_registry.metadata
messaging = messaging_tables(metadata)
audit = audit_tables(metadata, "verification")
deletions = deletion_log_table(metadata)


class VerificationJob(VerificationTable, table=True):
    """One per report revision (photos added later make a new revision): submitting the same revision again
    finds this row and changes nothing."""

    __tablename__ = "verification_jobs"
    __table_args__ = (Index("ix_verification_jobs_pending", "status", "lease_until"),)

    job_id: str = Field(primary_key=True, max_length=48)  # "<report_id>:<revision>"
    report_id: str = Field(sa_column=Column(String(36), nullable=False, index=True))
    revision: int = 0
    request: str = Field(sa_column=Column(Text, nullable=False))  # the ReportSubmitted message, JSON
    status: str = Field(max_length=16)  # pending | done | dead (given up on after job_max_attempts)
    priority: int = 0
    traceparent: str | None = Field(default=None, max_length=64)  # the trace the job continues
    received_at: datetime = Field(sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    verdict: str | None = Field(default=None, max_length=16)
    score: float | None = None
    result: str | None = Field(default=None, sa_column=Column(Text))  # the VerificationCompleted message, JSON
    attempts: int = 0  # claims so far: a job that kills its worker counts too
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class PhotoFingerprint(VerificationTable, table=True):
    """What we remember of every photo seen: to find it again in later reports."""

    __tablename__ = "photo_fingerprints"

    id: int | None = Field(default=None, primary_key=True)
    report_id: str = Field(sa_column=Column(String(36), nullable=False, index=True))
    photo_id: str = Field(max_length=36)
    sha256: str = Field(sa_column=Column(String(64), nullable=False, index=True))
    # 64-bit pHash stored as a signed integer (both SQLite and PostgreSQL have signed 64-bit integers).
    phash: int | None = Field(default=None, sa_column=Column(BigInteger))
    pdq: bytes | None = Field(default=None, sa_column=Column(LargeBinary(32)))
    pdq_quality: int | None = None
    captured_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    gps_lat: float | None = None
    gps_lon: float | None = None
    claimed_lat: float
    claimed_lon: float
    received_at: datetime = Field(sa_type=UTCDateTime)
    # A video's frame hashes (vpdq.pack: PDQ and quality of about one frame a second); None for a photo.
    frames: bytes | None = Field(default=None, sa_column=Column(LargeBinary))


class ReportText(VerificationTable, table=True):
    """What text checks need to remember of a report: a hash of its text and of its photos, and the daily
    pseudonymous submitter tag (an HMAC that changes every day; no address, nothing lasting)."""

    __tablename__ = "report_texts"
    __table_args__ = (Index("ix_report_texts_submitter", "submitter_tag", "received_at"),)

    report_id: str = Field(primary_key=True, max_length=36)
    submitter_tag: str | None = Field(default=None, max_length=64)
    submitter_kind: str | None = Field(default=None, max_length=16)  # installation | address
    # Set when the installation does not count as a witness of its own (burgermelding_shared.witnesses).
    independent_source: str | None = Field(default=None, max_length=64)
    text_hash: str = Field(max_length=64)
    content_hash: str = Field(max_length=64)  # text and photo digests together: "the same report again"
    received_at: datetime = Field(sa_type=UTCDateTime)


class IncidentGroup(VerificationTable, table=True):
    """Reports about one event: close in place and time, compatible in category."""

    __tablename__ = "incident_groups"
    __table_args__ = (Index("ix_incident_groups_cell", "cell", "last_seen"),)

    id: str = Field(primary_key=True, max_length=36)
    family: str = Field(max_length=24)
    cell: str = Field(max_length=16)  # H3 resolution 9 cell of the first report
    lat: float
    lon: float
    first_seen: datetime = Field(sa_type=UTCDateTime)
    last_seen: datetime = Field(sa_type=UTCDateTime)
    report_count: int = 1
    merged_into: str | None = Field(default=None, max_length=36)


class ReportGroup(VerificationTable, table=True):
    __tablename__ = "report_groups"

    report_id: str = Field(primary_key=True, max_length=36)
    group_id: str = Field(sa_column=Column(String(36), nullable=False, index=True))
    observed_at: datetime = Field(sa_type=UTCDateTime)
    lat: float
    lon: float
