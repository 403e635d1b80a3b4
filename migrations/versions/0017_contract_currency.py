"""A contract books in its plan's currency (issue #17): contracts on the Danish plan are DKK.

Until now PUT /api/contracts left every contract in EUR, so a contract on dk-follow-up printed its
Danish amounts as euros. The API now sets the currency from the plan; this corrects the rows written
before. Customers' languages are left as they are: a customer may really have chosen German
(docs/languages.md).

Revision ID: 0017_contract_currency
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_contract_currency"
down_revision = "0001"
branch_labels = None
depends_on = None

# The built-in plans that book in another currency than EUR (models/plans.py), as of this revision.
_PLAN_CURRENCIES = {"dk-follow-up": "DKK"}


def upgrade() -> None:
    for plan_id, currency in _PLAN_CURRENCIES.items():
        op.execute(
            sa.text("UPDATE contracts SET currency = :currency WHERE dunning_plan = :plan AND currency = 'EUR'").bindparams(
                currency=currency, plan=plan_id
            )
        )


def downgrade() -> None:
    for plan_id, currency in _PLAN_CURRENCIES.items():
        op.execute(
            sa.text("UPDATE contracts SET currency = 'EUR' WHERE dunning_plan = :plan AND currency = :currency").bindparams(
                currency=currency, plan=plan_id
            )
        )
