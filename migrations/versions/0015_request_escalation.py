"""When an unanswered customer request was escalated to a supervisor (issue #14)

Revision ID: 0015_request_escalation
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0015_request_escalation"
down_revision = "0001"
branch_labels = None
depends_on = "0012_portal"  # service_requests is created there


def upgrade() -> None:
    op.add_column("service_requests", sa.Column("escalated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("service_requests") as batch:
        batch.drop_column("escalated_at")
