"""report group id as a column, so dispatchers can filter by group with an index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:40:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bridge_reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("group_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_bridge_reports_group_id"), ["group_id"], unique=False)
    # Reports verified before this column existed carry their group inside the verification JSON.
    reports = sa.table(
        "bridge_reports",
        sa.column("report_id", sa.String),
        sa.column("verification", sa.Text),
        sa.column("group_id", sa.String),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(reports.c.report_id, reports.c.verification).where(reports.c.verification.is_not(None))
    ).all()
    for report_id, verification in rows:
        group_id = json.loads(verification).get("group_id")
        if group_id:
            connection.execute(reports.update().where(reports.c.report_id == report_id).values(group_id=group_id))


def downgrade() -> None:
    with op.batch_alter_table("bridge_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bridge_reports_group_id"))
        batch_op.drop_column("group_id")
