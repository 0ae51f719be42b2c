"""new installations of one address count as one witness: the address they registered from, for their first hour

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 07:30:00
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
    # Installations registered before this have neither value: each counts as its own witness, as before.
    with op.batch_alter_table("installations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registered_from", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("new_until", burgermelding_shared.timeutil.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_installations_new_until"), ["new_until"], unique=False)
    # A report keeps the source it was made with: its later messages carry that one, not a new one.
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("independent_source", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("independent_source")
    with op.batch_alter_table("installations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_installations_new_until"))
        batch_op.drop_column("new_until")
        batch_op.drop_column("registered_from")
