"""Bad input changes nothing (issue #12, item 9): a payload digest per processed event (a reused
event id with another payload is refused), and campaign entries counted per address and IP

Revision ID: 0010_input_rules
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0010_input_rules"
down_revision = "0001"
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    # Events recorded before this migration have no digest: a repeat of theirs is answered as before.
    with op.batch_alter_table("processed_events") as batch:
        batch.add_column(sa.Column("payload_sha256", S(), nullable=True))
    op.create_table(
        "campaign_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("scope", S(), nullable=False),  # e.g. "quote:address", "confirm:ip"
        sa.Column("key", S(), nullable=False),  # keyed hash of the address or IP, never the value
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    )
    op.create_index("ix_campaign_entries_scope_key_at", "campaign_entries", ["scope", "key", "at"])


def downgrade() -> None:
    op.drop_index("ix_campaign_entries_scope_key_at", table_name="campaign_entries")
    op.drop_table("campaign_entries")
    with op.batch_alter_table("processed_events") as batch:
        batch.drop_column("payload_sha256")
