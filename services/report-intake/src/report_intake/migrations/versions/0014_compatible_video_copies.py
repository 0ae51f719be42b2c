"""A video's compatible copy (H.264, made after the 202 where its codec does not play in every browser), and the
playable copy's codecs as RFC 6381 names them

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-08 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("playable_codecs", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("compatible_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("compatible_state", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("photos", schema=None) as batch_op:
        batch_op.drop_column("compatible_state")
        batch_op.drop_column("compatible_sha256")
        batch_op.drop_column("playable_codecs")
