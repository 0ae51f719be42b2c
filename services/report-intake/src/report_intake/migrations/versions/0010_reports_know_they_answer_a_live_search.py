"""reports know they answer a live Burgernet search: such a sighting is urgent by the one rule (contracts.is_urgent)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 12:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("answers_live_search", sa.Boolean(), nullable=False, server_default=sa.false()))
    # Sightings already stored: an answer to an action (not a witness call) answers a live search.
    op.execute(
        "UPDATE reports SET answers_live_search = true WHERE appeal_id IN "
        "(SELECT action_id FROM burgernet_actions WHERE kind = 'action')"
    )


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("answers_live_search")
