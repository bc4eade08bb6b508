"""Report jobs remember whether their message reached the job queue (a job queued while Redis was away is
sent by the sweep once it is back).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("report_jobs") as batch:
        batch.add_column(sa.Column("enqueued_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE report_jobs SET enqueued_at = created_at")


def downgrade() -> None:
    with op.batch_alter_table("report_jobs") as batch:
        batch.drop_column("enqueued_at")
