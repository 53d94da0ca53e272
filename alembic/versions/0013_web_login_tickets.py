"""web_login_tickets: scan-to-log-in tickets (the mini-program confirms a browser's login)

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "web_login_tickets",
        sa.Column("ticket_hash", sa.String(length=64), nullable=False),
        sa.Column("scene", sa.String(length=32), nullable=False),
        sa.Column("app_key", sa.String(length=64), nullable=False),
        sa.Column("binding_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=True),
        sa.Column("origin", sa.String(length=256), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=512), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("ticket_hash"),
        sa.UniqueConstraint("scene"),
    )
    op.create_index("ix_web_login_tickets_expires_at", "web_login_tickets", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_web_login_tickets_expires_at", table_name="web_login_tickets")
    op.drop_table("web_login_tickets")
