"""notice evidence: dispatch and delivery facts per notice

Revision ID: 0006_evidence
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_evidence"
down_revision = "0001"
branch_labels = None
depends_on = None

KIND = sa.Enum("DISPATCHED", "DELIVERED", "UNDELIVERABLE", name="evidencekind")


def upgrade() -> None:
    op.create_table(
        "notice_evidence",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.Integer(), sa.ForeignKey("messages.id"), nullable=False, index=True),
        sa.Column("kind", KIND, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("reference", sa.String(), nullable=False),
        sa.Column("recorded_by", sa.String(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("message_id", "kind", "reference"),
    )


def downgrade() -> None:
    op.drop_table("notice_evidence")
    KIND.drop(op.get_bind(), checkfirst=True)
