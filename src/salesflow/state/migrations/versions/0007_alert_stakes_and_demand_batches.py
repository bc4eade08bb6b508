"""Alerts carry the money at stake and the severity they were acknowledged at; each day's demand-forecast
batch is kept, so that the next day's demand is settled from it (one demand figure per product per day).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("at_stake", sa.Float, nullable=False, server_default="0"))
        batch.add_column(sa.Column("acknowledged_severity", sa.String(8), nullable=True))
        batch.create_index("ix_alerts_at_stake", ["at_stake"])
    op.create_table(
        "demand_batches",
        sa.Column("as_of", sa.Date, primary_key=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("figures", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("demand_batches")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_at_stake")
        batch.drop_column("acknowledged_severity")
        batch.drop_column("at_stake")
