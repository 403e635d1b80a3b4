"""bank statements: imports, lines, debtor accounts

Revision ID: 0005_banking
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_banking"
down_revision = "0001"
branch_labels = None
depends_on = None

LINE_STATUS = sa.Enum("BOOKED", "QUEUED", "IGNORED", "DISMISSED", name="linestatus")
MATCH_RULE = sa.Enum(
    "CREDITOR_REFERENCE", "END_TO_END_ID", "CONTRACT_IN_TEXT", "IBAN_AND_AMOUNT", "STAFF", name="matchrule"
)


def upgrade() -> None:
    op.create_table(
        "statement_imports",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("file_sha256", sa.String(), nullable=False, index=True),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.Column("imported_by", sa.String(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("booked", sa.Integer(), nullable=False),
        sa.Column("queued", sa.Integer(), nullable=False),
        sa.Column("ignored", sa.Integer(), nullable=False),
        sa.Column("duplicates", sa.Integer(), nullable=False),
    )
    op.create_table(
        "statement_lines",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("entry_ref", sa.String(), nullable=False, unique=True),
        sa.Column("import_id", sa.Integer(), sa.ForeignKey("statement_imports.id"), nullable=False, index=True),
        sa.Column("account_iban", sa.String(), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(), nullable=False),
        sa.Column("credit", sa.Boolean(), nullable=False),
        sa.Column("reversal", sa.Boolean(), nullable=False),
        sa.Column("booking_date", sa.Date(), nullable=True),
        sa.Column("end_to_end_id", sa.String(), nullable=True),
        sa.Column("creditor_reference", sa.String(), nullable=True),
        sa.Column("remittance", sa.String(), nullable=False),
        sa.Column("debtor_iban", sa.String(), nullable=True),
        sa.Column("status", LINE_STATUS, nullable=False, index=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("matched_by", MATCH_RULE, nullable=True),
        sa.Column("contract_id", sa.Integer(), sa.ForeignKey("contracts.id"), nullable=True),
        sa.Column("payment_ref", sa.String(), nullable=True),
        sa.Column("resolved_by", sa.String(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "debtor_accounts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("contract_id", sa.Integer(), sa.ForeignKey("contracts.id"), nullable=False, index=True),
        sa.Column("iban", sa.String(), nullable=False, index=True),
        sa.Column("learned_from", sa.String(), nullable=False),
        sa.UniqueConstraint("contract_id", "iban"),
    )


def downgrade() -> None:
    op.drop_table("debtor_accounts")
    op.drop_table("statement_lines")
    op.drop_table("statement_imports")
    LINE_STATUS.drop(op.get_bind(), checkfirst=True)
    MATCH_RULE.drop(op.get_bind(), checkfirst=True)
