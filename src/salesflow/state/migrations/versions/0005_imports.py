"""Imports under review move from the cache into the state database.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imports",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
        sa.Column("rows", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_imports_owner", "imports", ["owner"])
    op.create_index("ix_imports_created_at", "imports", ["created_at"])
    op.create_index("ix_imports_expires_at", "imports", ["expires_at"])
    op.create_index("ix_imports_owner_sha256", "imports", ["owner", "sha256"])


def downgrade() -> None:
    op.drop_table("imports")
