"""Why dunning is blocked: premiums.dunning_block_reason; contracts stopped for a person (MD07)

Revision ID: 0009_dunning_blocks
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0009_dunning_blocks"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("premiums") as batch:
        batch.add_column(sa.Column("dunning_block_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    # Blocks from before this migration (staff cancellations, MD07 returns) did not record why: they
    # stay blocked, and releasing a contract does not lift them (it lifts only its own code).
    op.execute(
        sa.text(
            "UPDATE premiums SET dunning_block_reason = 'cancelled: blocked before reasons were recorded' "
            "WHERE dunning_blocked"
        )
    )
    with op.batch_alter_table("contracts") as batch:
        batch.add_column(sa.Column("dunning_stopped_code", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("dunning_stopped_reason", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch.add_column(sa.Column("dunning_stopped_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contracts") as batch:
        batch.drop_column("dunning_stopped_at")
        batch.drop_column("dunning_stopped_reason")
        batch.drop_column("dunning_stopped_code")
    with op.batch_alter_table("premiums") as batch:
        batch.drop_column("dunning_block_reason")
