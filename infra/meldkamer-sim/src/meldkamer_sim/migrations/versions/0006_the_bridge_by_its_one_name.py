"""the bridge by its one name: callbacks still waiting in the outbox go to `dispatch-bridge`, not `bridge`

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 12:50:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The relay sends a row to the destination its name configures; an old name would find none.
    op.execute("UPDATE outbox_messages SET destination = 'dispatch-bridge' WHERE destination = 'bridge'")


def downgrade() -> None:
    op.execute("UPDATE outbox_messages SET destination = 'bridge' WHERE destination = 'dispatch-bridge'")
