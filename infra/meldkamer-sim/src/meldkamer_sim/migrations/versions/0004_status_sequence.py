"""The script's status changes are confirmed in order: the incident keeps the sequence of the last one

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 18:52:35.032307
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status_sequence", sa.Integer(), server_default="-1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("status_sequence")
