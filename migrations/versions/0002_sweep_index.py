"""premiums: index (status, id) for the sweep

The sweep pages through open premiums by id (`id > last ORDER BY id LIMIT 500`). Without this
index both SQLite and PostgreSQL walk the primary key and filter, so the sweep's cost grows with
every premium ever booked; with it they walk only the open premiums (make bench shows both).

Revision ID: 0002_sweep_index
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002_sweep_index"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_premiums_status_id", "premiums", ["status", "id"])


def downgrade() -> None:
    op.drop_index("ix_premiums_status_id", table_name="premiums")
