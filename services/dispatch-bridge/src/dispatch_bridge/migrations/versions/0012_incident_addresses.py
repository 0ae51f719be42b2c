"""incident addresses: the nearest address of an incident's centre, for the dispatchers' console

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # All empty at first: the bridge's address loop (incidents/addresses.py) fills them in the background for
    # the incidents seen in the last week, those from before the upgrade included; the console shows coordinates
    # until then (and for older incidents).
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True))
        batch_op.add_column(sa.Column("address_distance_m", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("address_lat", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("address_lon", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("address_lon")
        batch_op.drop_column("address_lat")
        batch_op.drop_column("address_distance_m")
        batch_op.drop_column("address")
