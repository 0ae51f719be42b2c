"""account epoch and login throttle: tokens and console sessions carry the account's epoch; no more lockouts

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import burgermelding_shared.timeutil

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Every account starts at epoch 0, and so does every open console session: they go on. (Bearer tokens from
    # before carry no epoch and are refused by their format: their holders log in again.) A lockout in force is
    # lifted: logins are throttled instead.
    with op.batch_alter_table("dispatchers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("epoch", sa.Integer(), nullable=False, server_default="0"))
        batch_op.drop_column("locked_at")
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_epoch", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_column("account_epoch")
    with op.batch_alter_table("dispatchers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("locked_at", burgermelding_shared.timeutil.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.drop_column("epoch")
