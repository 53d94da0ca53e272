"""sms_codes: the live one-time code of each phone number and purpose, hashed

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sms_codes",
        sa.Column("phone", sa.String(length=20), nullable=False),
        sa.Column("purpose", sa.String(length=8), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("phone", "purpose"),
    )
    op.create_index("ix_sms_codes_expires_at", "sms_codes", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_sms_codes_expires_at", table_name="sms_codes")
    op.drop_table("sms_codes")
