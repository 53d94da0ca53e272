"""accounts: disable with a reason, deletion with a cooling-off period; username reservations

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("disabled_reason", sa.String(length=256), nullable=True))
        batch.add_column(
            sa.Column("deletion_requested_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("deletion_due_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_accounts_deletion_due_at", ["deletion_due_at"])
    op.create_table(
        "username_reservations",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest"),
    )


def downgrade() -> None:
    op.drop_table("username_reservations")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_index("ix_accounts_deletion_due_at")
        batch.drop_column("deleted_at")
        batch.drop_column("deletion_due_at")
        batch.drop_column("deletion_requested_at")
        batch.drop_column("disabled_reason")
