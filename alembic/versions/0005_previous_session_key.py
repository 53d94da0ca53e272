"""wechat_sessions: keep the previous session_key for a few minutes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("wechat_sessions") as batch:
        batch.add_column(sa.Column("previous_key_sealed", sa.String(length=256), nullable=True))
        batch.add_column(sa.Column("previous_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("wechat_sessions") as batch:
        batch.drop_column("previous_until")
        batch.drop_column("previous_key_sealed")
