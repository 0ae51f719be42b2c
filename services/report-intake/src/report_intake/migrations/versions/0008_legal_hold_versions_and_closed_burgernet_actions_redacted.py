"""legal hold versions; ended Burgernet actions keep only their closing message

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 06:45:00
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import burgermelding_shared.timeutil

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As burgermelding_shared.burgernet.PublishedAction.public() on the day of this migration (frozen here: a
# migration must not change when the code does).
GENERIC_HEADLINES = {
    "person": ("Burgernet: gezocht persoon", "Burgernet: person sought"),
    "vehicle": ("Burgernet: gezocht voertuig", "Burgernet: vehicle sought"),
    "missing_child": ("Burgernet: vermist kind", "Burgernet: missing child"),
    "witnesses": ("Burgernet: getuigen gezocht", "Burgernet: witnesses sought"),
}


def upgrade() -> None:
    op.create_table(
        "legal_hold_states",
        sa.Column("hold_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("incident_id", sqlmodel.sql.sqltypes.AutoString(length=36), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("changed_at", burgermelding_shared.timeutil.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hold_id", name=op.f("pk_legal_hold_states")),
    )
    # The holds in force today, at version 1 (what the bridge calls them too).
    op.execute(
        "INSERT INTO legal_hold_states (hold_id, incident_id, version, active, changed_at) "
        "SELECT hold_id, MIN(incident_id), 1, true, MIN(held_since) FROM report_holds GROUP BY hold_id"
    )
    # An ended action no longer says whom it sought (a found child's description is not left public).
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT action_id, document FROM burgernet_actions WHERE status != 'open'"))
    for action_id, raw in rows.fetchall():
        document = json.loads(raw)
        headline_nl, headline_en = GENERIC_HEADLINES.get(document.get("looking_for"), ("Burgernet", "Burgernet"))
        document.update(
            headline_nl=headline_nl, headline_en=headline_en, description_nl="", description_en="", photo=None
        )
        connection.execute(
            sa.text("UPDATE burgernet_actions SET document = :document WHERE action_id = :id"),
            {"document": json.dumps(document), "id": action_id},
        )


def downgrade() -> None:
    op.drop_table("legal_hold_states")
