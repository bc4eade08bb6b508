"""Which process holds a report job's attempt.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("report_jobs") as batch:
        batch.add_column(sa.Column("worker", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("report_jobs") as batch:
        batch.drop_column("worker")
