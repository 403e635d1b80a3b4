"""An abandoned quote carries the language its campaign mails are written in (issue #17): de, en or
da, from the calculator's report (or the visitor's country). Quotes stored before are German, as
every campaign mail was until now.

Revision ID: 0019_quote_language
Revises: 0002_campaign
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_quote_language"
down_revision = "0002_campaign"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("campaign_quotes", sa.Column("language", sa.String(), nullable=False, server_default="de"))


def downgrade() -> None:
    with op.batch_alter_table("campaign_quotes") as batch:
        batch.drop_column("language")
