"""agency handover and court dunning: agent profiles and absences, customer notes, contact
attempts, court events and court documents

Revision ID: 0004_agency_court
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004_agency_court"
down_revision = "0001"
branch_labels = None
depends_on = None

TEXT = sqlmodel.sql.sqltypes.AutoString
WHEN = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "agent_profiles",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agent_code", TEXT(), nullable=False),
        sa.Column("supervisor_code", TEXT(), nullable=True),
        sa.Column("token_hash", TEXT(), nullable=True),
        sa.Column("token_issued_at", WHEN(), nullable=True),
    )
    op.create_index("ix_agent_profiles_agent_code", "agent_profiles", ["agent_code"], unique=True)
    op.create_table(
        "agent_absences",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("agent_code", TEXT(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("reason", TEXT(), nullable=False),
    )
    op.create_index("ix_agent_absences_agent_code", "agent_absences", ["agent_code"])
    op.create_table(
        "customer_notes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("idempotency_key", TEXT(), nullable=False, unique=True),
        sa.Column("customer_id", sa.Integer(), sa.ForeignKey("customers.id"), nullable=False),
        sa.Column("contract_id", sa.Integer(), sa.ForeignKey("contracts.id"), nullable=False),
        sa.Column("case_id", TEXT(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("author", TEXT(), nullable=False),
        sa.Column("kind", TEXT(), nullable=False),
        sa.Column("text", TEXT(), nullable=False),
        sa.Column("at", WHEN(), nullable=False),
    )
    op.create_index("ix_customer_notes_customer_id", "customer_notes", ["customer_id"])
    op.create_index("ix_customer_notes_case_id", "customer_notes", ["case_id"])
    op.create_table(
        "contact_attempts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("idempotency_key", TEXT(), nullable=False, unique=True),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("case_id", TEXT(), nullable=False),
        sa.Column("agent_code", TEXT(), nullable=False),
        sa.Column("channel", TEXT(), nullable=False),
        sa.Column("reached", sa.Boolean(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("at", WHEN(), nullable=False),
        sa.Column("note", TEXT(), nullable=False),
    )
    op.create_index("ix_contact_attempts_task_id", "contact_attempts", ["task_id"])
    op.create_table(
        "court_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("idempotency_key", TEXT(), nullable=False, unique=True),
        sa.Column("case_id", TEXT(), nullable=False),
        sa.Column("kind", TEXT(), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=True),
        sa.Column("state_after", TEXT(), nullable=False),
        sa.Column("reference", TEXT(), nullable=False),
        sa.Column("note", TEXT(), nullable=False),
        sa.Column("recorded_at", WHEN(), nullable=False),
    )
    op.create_index("ix_court_events_case_id", "court_events", ["case_id"])
    op.create_table(
        "court_documents",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("idempotency_key", TEXT(), nullable=False, unique=True),
        sa.Column("case_id", TEXT(), nullable=False),
        sa.Column("kind", TEXT(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=True),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", WHEN(), nullable=False),
    )
    op.create_index("ix_court_documents_case_id", "court_documents", ["case_id"])


def downgrade() -> None:
    for table in ("court_documents", "court_events", "contact_attempts", "customer_notes", "agent_absences"):
        op.drop_table(table)
    op.drop_table("agent_profiles")
