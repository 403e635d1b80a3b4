"""The customer portal: step-up sessions, one-time codes, service requests, uploads; birth date (issue #14)

Revision ID: 0012_portal
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0012_portal"
down_revision = "0001"
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString
T = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.add_column("customers", sa.Column("birth_date", sa.Date(), nullable=True))
    op.create_table(
        "portal_sessions",
        sa.Column("id_hash", S(), primary_key=True),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id"), nullable=False, index=True),
        sa.Column("pay_link_token_id", S(), nullable=False),
        sa.Column("method", S(), nullable=False),
        sa.Column("language", S(), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.Column("expires_at", T(), nullable=False),
        sa.Column("last_seen_at", T(), nullable=False),
        sa.Column("revoked_at", T(), nullable=True),
    )
    op.create_table(
        "portal_challenges",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("purpose", S(), nullable=False),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id"), nullable=False, index=True),
        sa.Column("pay_link_token_id", S(), nullable=True),
        sa.Column("channel", S(), nullable=False),
        sa.Column("destination", S(), nullable=False),
        sa.Column("new_value", sa.JSON(), nullable=True),
        sa.Column("code_hash", S(), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.Column("expires_at", T(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("used_at", T(), nullable=True),
    )
    op.create_table(
        "portal_uploads",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id"), nullable=False, index=True),
        sa.Column("content_type", S(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", S(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", T(), nullable=False),
    )
    op.create_table(
        "service_requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id"), nullable=False, index=True),
        sa.Column("contract_id", sa.Integer(), sa.ForeignKey("contracts.id"), nullable=False, index=True),
        sa.Column("case_id", S(), nullable=False, index=True),
        sa.Column("queue", S(), nullable=False, index=True),
        sa.Column("kind", S(), nullable=False),
        sa.Column("status", S(), nullable=False, index=True),
        sa.Column("summary", S(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("upload_id", sa.Integer(), sa.ForeignKey("portal_uploads.id"), nullable=True),
        sa.Column("agent_code", S(), nullable=True),
        sa.Column("created_by", S(), nullable=False),
        sa.Column("created_at", T(), nullable=False),
        sa.Column("due_at", T(), nullable=True),
        sa.Column("answer", S(), nullable=True),
        sa.Column("handled_by", S(), nullable=True),
        sa.Column("handled_at", T(), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("service_requests")
    op.drop_table("portal_uploads")
    op.drop_table("portal_challenges")
    op.drop_table("portal_sessions")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("birth_date")
