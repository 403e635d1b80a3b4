"""What request handlers get from the app: the engine, the Temporal client, the settings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated

from fastapi import Path, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client

from core.calendar import local_date
from core.timezone import BUSINESS_TIMEZONE
from infra.config import Settings
from ledger.campaign import EntryLimited
from ledger.db import session_scope
from ledger.inbound import Inbound

# A row id in a URL: a number outside 64 bits is refused (422, naming the parameter) before it reaches
# the database, which cannot hold it (SQLite raised OverflowError → 500; found by tests/test_fuzz.py).
RowId = Annotated[int, Path(ge=-(2**63), le=2**63 - 1)]


def berlin_today() -> date:
    """Today where the insurer books (the ledger's "as of" date for requests)."""
    return local_date(datetime.now(UTC), BUSINESS_TIMEZONE)


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


def too_many(error: EntryLimited) -> JSONResponse:
    """An entry limit reached (ledger/campaign.py): 429 with Retry-After; nothing was written."""
    return JSONResponse(
        status_code=429, content={"detail": str(error)}, headers={"Retry-After": str(error.retry_after_seconds)}
    )


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None
