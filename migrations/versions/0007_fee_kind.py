"""fees.kind: dunning costs or claimed default interest

Revision ID: 0007_fee_kind
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_fee_kind"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fees") as batch:
        batch.add_column(sa.Column("kind", sa.String(), nullable=False, server_default="cost"))


def downgrade() -> None:
    with op.batch_alter_table("fees") as batch:
        batch.drop_column("kind")
