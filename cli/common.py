"""What every CLI module shares: one console, one way to talk to Temporal and the ledger, and
one way to turn a refusal into a message with exit code 2 (never a traceback)."""

from __future__ import annotations

import asyncio
import getpass
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console
from sqlmodel import Session
from temporalio.client import Client, WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from infra.config import get_settings
from infra.runtime import connect
from ledger import audit as audit_trail
from ledger.db import make_engine, session_scope
from ledger.service import LedgerError

console = Console()
T = TypeVar("T")


class CliError(Exception):
    """Refused before or after talking to Temporal: shown as `error: …`, exit 2."""


def fail(prefix: str, message: object) -> typer.Exit:
    console.print(f"[red]{prefix}:[/red] {message}")
    return typer.Exit(2)


def identity() -> str:
    """Who the command line acts as (issue #12): CLI_IDENTITY, else "cli:<operating-system user>".
    Case updates carry it as `by`, Temporal records it as the client identity, the audit trail as actor."""
    configured = get_settings().cli_identity.strip()
    return configured or f"cli:{getpass.getuser()}"


def audit(action: str, contract_number: str | None = None, **detail: object) -> None:
    """One audit-trail row for a change made from the command line."""
    with session_scope(make_engine(get_settings().effective_database_url)) as session:
        audit_trail.record(
            session,
            actor_kind="cli",
            actor=identity(),
            via="cli",
            action=action,
            contract_number=contract_number,
            detail={k: str(v) for k, v in detail.items() if v not in (None, "")},
            source=socket.gethostname(),
        )


def run(action: Callable[[Client], Awaitable[T]]) -> T:
    """Connect with the configured settings, run `action`, and report refusals as exit 2."""

    async def main() -> T:
        return await action(await connect(get_settings(), identity=identity()))

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
