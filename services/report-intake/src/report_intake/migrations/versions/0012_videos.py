"""Videos beside photos: a row's kind, its playable copy without metadata, its length

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 21:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=8), nullable=False, server_default="photo"))
        batch_op.add_column(sa.Column("playable_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("playable_type", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("duration_ms", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_column("duration_ms")
        batch_op.drop_column("playable_type")
        batch_op.drop_column("playable_sha256")
        batch_op.drop_column("kind")
