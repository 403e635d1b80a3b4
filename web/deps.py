"""What request handlers get from the app: the engine, the Temporal client, the settings."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from fastapi import Request
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client

from config import Settings
from ledger.db import session_scope
from web.inbound import Inbound


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
