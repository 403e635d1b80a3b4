"""What request handlers get from the app: the engine, the Temporal client, the settings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

from fastapi import Request
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client

from config import Settings
from core.calendar import local_date
from ledger.db import session_scope
from web.inbound import Inbound


def berlin_today() -> date:
    """Today where the insurer books (the ledger's "as of" date for requests)."""
    return local_date(datetime.now(UTC), "Europe/Berlin")


@dataclass
class AppContext:
    engine: Engine
    client: Client
    settings: Settings
    inbound: Inbound


def context(request: Request) -> AppContext:
    ctx: AppContext = request.app.state.ctx
    return ctx


def db_session(request: Request) -> Iterator[Session]:
    with session_scope(context(request).engine) as session:
        yield session
