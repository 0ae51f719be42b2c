"""known login sources: the desks each user name logged in from lately, in the database, not only in memory

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import burgermelding_shared.timeutil

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Keyed hashes of the name and of the source's network (auth.Pseudonyms), never an address or a name as
    # typed. It starts empty: a desk is known again from its user's first good login there after the upgrade.
    op.create_table(
        "known_login_sources",
        sa.Column("name_hmac", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("source_hmac", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("last_login_at", burgermelding_shared.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name_hmac", "source_hmac", name=op.f("pk_known_login_sources")),
    )
    with op.batch_alter_table("known_login_sources", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_known_login_sources_last_login_at"), ["last_login_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("known_login_sources", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_known_login_sources_last_login_at"))

    op.drop_table("known_login_sources")
