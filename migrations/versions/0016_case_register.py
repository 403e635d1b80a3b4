"""The case register for collections analytics (issue #16): one row per dunning case.

Revision ID: 0016_case_register
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0016_case_register"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "case_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("opened_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("claimed_cents", sa.Integer(), nullable=True),
        sa.Column("closed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("stage_at_close", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("paid_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("contract_status_at_close", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("suspended", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.ForeignKeyConstraint(["contract_id"], ["contracts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id"),
    )
    op.create_index("ix_case_records_opened", "case_records", ["opened_at"])
    op.create_index("ix_case_records_contract", "case_records", ["contract_id", "opened_at"])
    # The analytics join the outbox, the status history and the court events to cases by case id.
    op.create_index("ix_messages_case_kind", "messages", ["case_id", "kind"])
    op.create_index("ix_status_changes_case", "contract_status_changes", ["case_id"])
    op.create_index("ix_payments_contract_received", "payments", ["contract_id", "received_at"])


def downgrade() -> None:
    op.drop_index("ix_payments_contract_received", table_name="payments")
    op.drop_index("ix_status_changes_case", table_name="contract_status_changes")
    op.drop_index("ix_messages_case_kind", table_name="messages")
    op.drop_index("ix_case_records_contract", table_name="case_records")
    op.drop_index("ix_case_records_opened", table_name="case_records")
    op.drop_table("case_records")
