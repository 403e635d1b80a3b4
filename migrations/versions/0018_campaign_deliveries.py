"""Campaign and agent mails go through the e-mail provider too (issue #17): a provider delivery
may belong to no contract (an abandoned quote's reminder), so its contract is optional.

Revision ID: 0018_campaign_deliveries
Revises: 0003_providers
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_campaign_deliveries"
down_revision = "0003_providers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("provider_deliveries") as batch:
        batch.alter_column("contract_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("provider_deliveries") as batch:
        batch.alter_column("contract_id", existing_type=sa.Integer(), nullable=False)
