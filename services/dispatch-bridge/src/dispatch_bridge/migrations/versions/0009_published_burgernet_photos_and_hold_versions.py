"""published Burgernet photos and legal hold versions

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import burgermelding_shared.timeutil

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Photos uploaded before this table existed are not in it: an action can no longer name them, and intake
    # serves only photos in the published store (see the README, Burgernet).
    op.create_table(
        "burgernet_photos",
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("sha1", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("original_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("uploaded_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("uploaded_at", burgermelding_shared.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_burgernet_photos")),
    )
    with op.batch_alter_table("legal_holds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("follows_hold", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=True))
    op.execute("UPDATE legal_holds SET version = 2 WHERE lifted_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("legal_holds", schema=None) as batch_op:
        batch_op.drop_column("follows_hold")
        batch_op.drop_column("version")
    op.drop_table("burgernet_photos")
