"""report texts know whether the submitter is an installation

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 21:46:29.662355
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
    with op.batch_alter_table("report_texts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("submitter_kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("report_texts", schema=None) as batch_op:
        batch_op.drop_column("submitter_kind")
