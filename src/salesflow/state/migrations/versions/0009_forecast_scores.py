"""Every day's forecasts are kept until their days are known, then scored (forecasts that keep score).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "forecast_scores",
        sa.Column("as_of", sa.Date, primary_key=True),
        sa.Column("product_id", sa.Integer, primary_key=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("forecast", sa.JSON, nullable=True),
        sa.Column("scale", sa.Float, nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("days", sa.Integer, nullable=False),
        sa.Column("actual", sa.Float, nullable=False),
        sa.Column("predicted", sa.Float, nullable=False),
        sa.Column("abs_error", sa.Float, nullable=False),
        sa.Column("naive_abs_error", sa.Float, nullable=False),
        sa.Column("in_80", sa.Integer, nullable=False),
        sa.Column("in_95", sa.Integer, nullable=False),
    )
    op.create_index("ix_forecast_scores_recorded_at", "forecast_scores", ["recorded_at"])
    op.create_index("ix_forecast_scores_scored_at", "forecast_scores", ["scored_at"])


def downgrade() -> None:
    op.drop_table("forecast_scores")
