"""What every CLI module shares: one console, one way to talk to Temporal and the ledger, and
one way to turn a refusal into a message with exit code 2 (never a traceback)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from sqlmodel import Session
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from config import get_settings
from ledger.db import make_engine, session_scope
from ledger.service import LedgerError
from runtime import connect

console = Console()
T = TypeVar("T")


class CliError(Exception):
    """Refused before or after talking to Temporal: shown as `error: …`, exit 2."""


def fail(prefix: str, message: object) -> typer.Exit:
    console.print(f"[red]{prefix}:[/red] {message}")
    return typer.Exit(2)


def run(action: Callable[[Client], Awaitable[T]]) -> T:
    """Connect with the configured settings, run `action`, and report refusals as exit 2."""

    async def main() -> T:
        return await action(await connect(get_settings()))

    try:
        return asyncio.run(main())
    except (CliError, LedgerError) as error:
        raise fail("error", error) from None
    except WorkflowUpdateFailedError as error:
        raise fail("rejected", getattr(error.cause, "message", None) or error.cause) from None
    except WorkflowQueryFailedError as error:
        raise fail("error", getattr(error, "message", None) or error) from None
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise fail("error", error.message) from None
        raise


def ledger(work: Callable[[Session], T]) -> T:
    """One ledger transaction with the configured database; bad input is exit 2."""
    try:
        with session_scope(make_engine(get_settings().effective_database_url)) as session:
            return work(session)
    except LedgerError as error:
        raise fail("error", error) from None
