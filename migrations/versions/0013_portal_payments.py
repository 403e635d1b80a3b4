"""Portal payments: a checkout shared among a customer's contracts (issue #14)

Revision ID: 0013_portal_payments
Revises: 0001 (depends on 0003_providers)
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0013_portal_payments"
down_revision = "0001"
branch_labels = None
depends_on = "0003_providers"  # provider_checkouts is created there (its own branch from 0001)


def upgrade() -> None:
    for table in ("testpay_sessions", "provider_checkouts"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("customer_id", sa.Integer(), nullable=True))
            batch.create_foreign_key(f"fk_{table}_customer", "customers", ["customer_id"], ["id"])
            batch.add_column(sa.Column("allocation", sa.JSON(), nullable=True))
    with op.batch_alter_table("provider_checkouts") as batch:
        batch.add_column(sa.Column("payment_intent", sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("provider_checkouts") as batch:
        batch.drop_column("payment_intent")
    for table in ("testpay_sessions", "provider_checkouts"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_customer", type_="foreignkey")
            batch.drop_column("allocation")
            batch.drop_column("customer_id")
