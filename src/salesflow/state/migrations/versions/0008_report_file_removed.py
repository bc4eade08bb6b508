"""Report jobs remember when their file was removed after retention: the sweep reads each expired job once,
and the row itself goes with the state retention.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("report_jobs") as batch:
        batch.add_column(sa.Column("file_removed_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_report_jobs_finished_at", ["finished_at"])


def downgrade() -> None:
    with op.batch_alter_table("report_jobs") as batch:
        batch.drop_index("ix_report_jobs_finished_at")
        batch.drop_column("file_removed_at")
