"""display copies after the 202: a HEIC's display copy is made by a retried job (display_jobs)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 18:00:37.626477
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import burgermelding_shared.timeutil

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "display_jobs",
        sa.Column("report_id", sa.String(length=36), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("submitter_tag", sa.String(length=64), nullable=True),
        sa.Column("submitter_kind", sa.String(length=16), nullable=True),
        sa.Column("bridge_revision", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", burgermelding_shared.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_display_jobs_report_id_reports")),
        sa.PrimaryKeyConstraint("report_id", name=op.f("pk_display_jobs")),
    )
    with op.batch_alter_table("display_jobs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_display_jobs_due_at"), ["due_at"], unique=False)

    with op.batch_alter_table("photos", schema=None) as batch_op:
        # Every photo stored before this had its display copy made before the 202.
        batch_op.add_column(sa.Column("display_state", sa.String(length=16), nullable=False, server_default="ready"))
        batch_op.alter_column("sanitised_sha256", existing_type=sa.VARCHAR(length=64), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.alter_column("sanitised_sha256", existing_type=sa.VARCHAR(length=64), nullable=False)
        batch_op.drop_column("display_state")

    with op.batch_alter_table("display_jobs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_display_jobs_due_at"))

    op.drop_table("display_jobs")
