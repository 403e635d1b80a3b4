"""Alembic environment: migrations for the ledger tables in models/ledger.py."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import models.ledger  # noqa: F401  (registers the tables on SQLModel.metadata)
from ledger.db import make_engine

config = context.config
target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url") or ""
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
