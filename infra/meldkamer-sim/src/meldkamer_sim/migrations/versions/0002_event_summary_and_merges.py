"""event summary and merges

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 21:51:03.920159
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_summary", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("summary_version", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("merged_into", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("merged_into")
        batch_op.drop_column("summary_version")
        batch_op.drop_column("event_summary")
