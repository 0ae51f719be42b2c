"""report texts keep the independent source a report counts as (new installations of one address are one witness)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 07:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("report_texts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("independent_source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("report_texts", schema=None) as batch_op:
        batch_op.drop_column("independent_source")
