"""The web app: ledger API, customer pay pages, built-in test payment provider, outbox and
task pages for the embedded default.

Run: `uvicorn web.app:app` (make run does). The app connects to Temporal at start-up.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from config import get_settings
from ledger.db import make_engine, migrate
from ledger.service import LedgerError, NotFound
from observability import configure_logging
from runtime import connect
from web import agents, api, bank, evidence, pages, webhooks
from web import campaign as quote_campaign
from web import codec as payload_codec
from web import metrics as prometheus_metrics
from web.deps import AppContext
from web.inbound import Inbound


def create_app(ctx: AppContext | None = None) -> FastAPI:
    """`ctx` lets tests hand in their own engine and client; otherwise they come from settings."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if ctx is not None:
            app.state.ctx = ctx
        else:
            settings = get_settings()
            if settings.log_format == "json":
                configure_logging("web")  # JSON lines, personal data masked (observability.py)
            migrate(settings.effective_database_url)
            engine = make_engine(settings.effective_database_url)
            client = await connect(settings)
            app.state.ctx = AppContext(engine, client, settings, Inbound(engine, client, settings))
        yield

    app = FastAPI(title="Dunning and reactivation engine", version="0.1.0", lifespan=lifespan)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, error: NotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(error)})

    @app.exception_handler(LedgerError)
    async def bad_input(_: Request, error: LedgerError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": str(error)})

    app.include_router(api.router)
    app.include_router(prometheus_metrics.router)  # GET /metrics for Prometheus (issue #7)
    app.include_router(webhooks.router)  # before pages: it answers the stable pay link /pay/{token} first
    app.include_router(pages.router)
    app.include_router(agents.router)  # the agent page (issue #4)
    app.include_router(bank.router)
    app.include_router(evidence.router)
    app.include_router(payload_codec.router)
    app.include_router(quote_campaign.router)
    return app


app = create_app()
