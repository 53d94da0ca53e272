"""account events: the outbox, what each partner receives, and partners' webhooks

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "account_events",
        sa.Column("seq", _SEQ, nullable=False, autoincrement=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=40), nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("appids", sa.JSON(), nullable=False),
        sa.Column("platforms", sa.JSON(), nullable=False),
        sa.Column("dispatched", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    op.create_index("ix_account_events_account_id", "account_events", ["account_id"])
    op.create_index("ix_account_events_occurred_at", "account_events", ["occurred_at"])
    op.create_index("ix_account_events_dispatched", "account_events", ["dispatched"])
    op.create_table(
        "partner_events",
        sa.Column("position", _SEQ, nullable=False, autoincrement=True),
        sa.Column("partner_id", sa.String(length=64), nullable=False),
        sa.Column("event_seq", _SEQ, nullable=False),
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(length=256), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_seq"], ["account_events.seq"]),
        sa.PrimaryKeyConstraint("position"),
    )
    op.create_index("ix_partner_events_event_seq", "partner_events", ["event_seq"])
    op.create_index(
        "ix_partner_events_partner_position", "partner_events", ["partner_id", "position"]
    )
    op.create_index("ix_partner_events_due", "partner_events", ["status", "next_attempt_at"])
    op.create_index(
        "ix_partner_events_order", "partner_events", ["partner_id", "account_id", "status"]
    )
    with op.batch_alter_table("partners") as batch:
        batch.add_column(sa.Column("webhook_url", sa.String(length=2048), nullable=True))
        batch.add_column(sa.Column("webhook_secret_sealed", sa.String(length=256), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("partners") as batch:
        batch.drop_column("webhook_secret_sealed")
        batch.drop_column("webhook_url")
    op.drop_table("partner_events")
    op.drop_table("account_events")
