"""Alembic environment: migrations for every table module in models/.

Each feature keeps its tables in its own module and its own migration branch off 0001 (the
app upgrades to "heads"), so features can grow their schema independently.
"""

from __future__ import annotations

import importlib
import pkgutil

from alembic import context
from sqlmodel import SQLModel

import models
from ledger.db import make_engine

for module in pkgutil.iter_modules(models.__path__):  # registers every table on SQLModel.metadata
    importlib.import_module(f"models.{module.name}")

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
