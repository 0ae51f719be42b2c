"""dispatcher lockout: an account locked by too many wrong passwords in a row, until a supervisor lifts it

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 16:06:24.550227
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import burgermelding_shared.timeutil

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dispatchers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("locked_at", burgermelding_shared.timeutil.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("dispatchers", schema=None) as batch_op:
        batch_op.drop_column("locked_at")
