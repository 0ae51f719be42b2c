"""outbox ordering key

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 04:41:15.934384
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ordering_key", sa.String(length=128), nullable=True))
        batch_op.create_index("ix_outbox_messages_ordering", ["ordering_key", "status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_messages_ordering")
        batch_op.drop_column("ordering_key")
