"""contract_status_changes.recorded_at: when a status change was written, beside when it took effect

Revision ID: 0008_status_recorded_at
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0008_status_recorded_at"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contract_status_changes") as batch:
        batch.add_column(sa.Column("recorded_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contract_status_changes") as batch:
        batch.drop_column("recorded_at")
