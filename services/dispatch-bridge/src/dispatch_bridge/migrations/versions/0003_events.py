"""events: where and when each report was seen and by which (pseudonymous) sender; each incident's event
extent, summary version and merge

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 21:49:11.861630
"""

import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import burgermelding_shared.timeutil

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bridge_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verified_assessment", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("lat", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("lon", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("observed_at", burgermelding_shared.timeutil.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("submitter_tag", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("submitter_kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))

    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("family", sqlmodel.sql.sqltypes.AutoString(length=24), nullable=True))
        batch_op.add_column(sa.Column("lat", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("lon", sa.Float(), nullable=True))
        batch_op.add_column(
            sa.Column("first_seen", burgermelding_shared.timeutil.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("last_seen", burgermelding_shared.timeutil.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("summary_version", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("merged_into", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True))
        batch_op.create_index("ix_incidents_last_seen", ["last_seen"], unique=False)
    backfill()


def backfill() -> None:
    """Reports forwarded before this revision carry place and time in their submission JSON; their incidents
    get the extent of their reports, so later reports of the same event can still join them."""
    UTC = burgermelding_shared.timeutil.UTCDateTime()
    reports = sa.table(
        "bridge_reports",
        sa.column("report_id", sa.String),
        sa.column("submission", sa.Text),
        sa.column("category", sa.String),
        sa.column("incident_id", sa.String),
        sa.column("lat", sa.Float),
        sa.column("lon", sa.Float),
        sa.column("observed_at", UTC),
    )
    incidents = sa.table(
        "incidents",
        sa.column("id", sa.String),
        sa.column("family", sa.String),
        sa.column("lat", sa.Float),
        sa.column("lon", sa.Float),
        sa.column("first_seen", UTC),
        sa.column("last_seen", UTC),
    )
    connection = op.get_bind()
    seen: dict[str, list[tuple[float, float, datetime, str]]] = {}
    for report_id, submission, category, incident_id in connection.execute(
        sa.select(reports.c.report_id, reports.c.submission, reports.c.category, reports.c.incident_id)
    ).all():
        data = json.loads(submission)
        lat, lon = data["location"]["lat"], data["location"]["lon"]
        observed = datetime.fromisoformat(data["observed_at"])
        connection.execute(
            reports.update().where(reports.c.report_id == report_id).values(lat=lat, lon=lon, observed_at=observed)
        )
        if incident_id:
            seen.setdefault(incident_id, []).append((lat, lon, observed, category))
    from burgermelding_shared.events import family_of

    for incident_id, points in seen.items():
        connection.execute(
            incidents.update()
            .where(incidents.c.id == incident_id)
            .values(
                family=family_of(points[0][3]),
                lat=sum(p[0] for p in points) / len(points),
                lon=sum(p[1] for p in points) / len(points),
                first_seen=min(p[2] for p in points),
                last_seen=max(p[2] for p in points),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_last_seen")
        batch_op.drop_column("merged_into")
        batch_op.drop_column("summary_version")
        batch_op.drop_column("last_seen")
        batch_op.drop_column("first_seen")
        batch_op.drop_column("lon")
        batch_op.drop_column("lat")
        batch_op.drop_column("family")

    with op.batch_alter_table("bridge_reports", schema=None) as batch_op:
        batch_op.drop_column("submitter_kind")
        batch_op.drop_column("submitter_tag")
        batch_op.drop_column("observed_at")
        batch_op.drop_column("lon")
        batch_op.drop_column("lat")
        batch_op.drop_column("verified_assessment")
