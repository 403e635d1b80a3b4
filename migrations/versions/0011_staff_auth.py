"""Who may do what: staff accounts, sessions, API clients, audit trail (issue #12)

Revision ID: 0011_staff_auth
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0011_staff_auth"
down_revision = "0001"
branch_labels = None
depends_on = None

S = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "staff_accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", S(), nullable=False, unique=True),
        sa.Column("roles", S(), nullable=False),
        sa.Column("agent_code", S(), nullable=True),
        sa.Column("password_hash", S(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_by", S(), nullable=False),
        sa.Column("disabled_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    )
    op.create_table(
        "staff_sessions",
        sa.Column("id_hash", S(), primary_key=True),
        sa.Column("name", S(), nullable=False, index=True),
        sa.Column("roles", S(), nullable=False),
        sa.Column("agent_code", S(), nullable=True),
        sa.Column("source", S(), nullable=False),
        sa.Column("subject", S(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    )
    op.create_table(
        "api_clients",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", S(), nullable=False, unique=True),
        sa.Column("key_id", S(), nullable=False, unique=True),
        sa.Column("secret_hash", S(), nullable=False),
        sa.Column("scopes", S(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("created_by", S(), nullable=False),
        sa.Column("revoked_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    )
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False, index=True),
        sa.Column("actor_kind", S(), nullable=False),
        sa.Column("actor", S(), nullable=False),
        sa.Column("via", S(), nullable=False),
        sa.Column("action", S(), nullable=False),
        sa.Column("contract_number", S(), nullable=True, index=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("source", S(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
    )


def downgrade() -> None:
    for table in ("audit_events", "api_clients", "staff_sessions", "staff_accounts"):
        op.drop_table(table)
