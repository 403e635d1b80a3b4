"""`starter.py staff …` and `starter.py api-client …`: who may sign in and which systems may call
the internal app (issue #12). Secrets are printed once and stored only as hashes; every change is
in the audit trail under the CLI's identity.

    python starter.py staff add mia --role clerk                 # prints a one-time password
    python starter.py staff add a7 --role agent --agent-code A-7
    python starter.py staff list
    python starter.py staff reset-password mia                   # new password, signs mia out everywhere
    python starter.py staff disable mia                          # and ends mia's sessions
    python starter.py api-client create billing --scope ledger:write --scope ledger:read
    python starter.py api-client list
    python starter.py api-client revoke billing
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer
from rich.table import Table
from sqlmodel import Session, col, select

from cli.common import audit, console, fail
from infra.config import get_settings
from ledger.db import make_engine, migrate, session_scope
from models.auth import ApiClient, Role, Scope, StaffAccount
from web.auth import accounts, sessions

staff_app = typer.Typer(help="Staff accounts (local sign-in) and their sessions.", no_args_is_help=True)
client_app = typer.Typer(help="API clients of other systems (scoped keys).", no_args_is_help=True)
T = TypeVar("T")
Name = Annotated[str, typer.Argument(help="Account or client name (lower case, e.g. mia)")]


def _db(work: Callable[[Session], T]) -> T:
    """One transaction on the installation's ledger (migrated first: this may be the first command)."""
    url = get_settings().effective_database_url
    migrate(url)
    try:
        with session_scope(make_engine(url)) as session:
            return work(session)
    except accounts.AccountError as error:
        raise fail("error", error) from None


@staff_app.command("add")
def staff_add(
    name: Name,
    role: Annotated[list[Role], typer.Option("--role", help="Role (repeatable)")],
    agent_code: Annotated[str | None, typer.Option(help="For role agent: the agent code")] = None,
) -> None:
    """Create a local account; prints its one-time password (shown only now)."""
    password = _db(lambda s: accounts.add_staff(s, name, [r.value for r in role], audit_actor(), agent_code))
    audit("starter.py staff add", None, account=name, roles=",".join(sorted(r.value for r in role)))
    console.print(f"account [bold]{name}[/bold] ({', '.join(r.value for r in role)}) created")
    console.print(f"one-time password: [bold]{password}[/bold]  (shown once; sign in at {internal_url()}/sign-in)")


@staff_app.command("list")
def staff_list() -> None:
    """Accounts, their roles and whether they are disabled."""

    def rows(session: Session) -> list[tuple[str, str, str, str]]:
        live: dict[str, int] = {}
        for row in sessions.live_sessions(session):
            live[row.name] = live.get(row.name, 0) + 1
        accounts_ = session.exec(select(StaffAccount).order_by(col(StaffAccount.name)))
        return [
            (a.name, a.roles, a.agent_code or "", "disabled" if a.disabled_at else f"{live.get(a.name, 0)} sessions")
            for a in accounts_
        ]

    table = Table("account", "roles", "agent code", "state")
    for row in _db(rows):
        table.add_row(*row)
    console.print(table)


@staff_app.command("reset-password")
def staff_reset(name: Name) -> None:
    """A new one-time password; the account's sessions end."""

    password = _db(lambda s: accounts.reset_password(s, name))  # ends the sessions too
    audit("starter.py staff reset-password", None, account=name)
    console.print(f"new one-time password for {name}: [bold]{password}[/bold]  (all sessions ended)")


@staff_app.command("disable")
def staff_disable(name: Name) -> None:
    """The account can no longer sign in; its sessions end now."""

    def disable(session: Session) -> int:
        live = sum(1 for row in sessions.live_sessions(session) if row.name == name)
        accounts.disable(session, name)  # ends the sessions too
        return live

    ended = _db(disable)
    audit("starter.py staff disable", None, account=name)
    console.print(f"{name} disabled; {ended} session(s) ended")


@staff_app.command("sign-out")
def staff_sign_out(name: Name) -> None:
    """End every session of a person (also for OIDC sign-ins, by name)."""
    ended = _db(lambda s: sessions.revoke_sessions_of(s, name))
    audit("starter.py staff sign-out", None, account=name)
    console.print(f"{ended} session(s) of {name} ended")


@client_app.command("create")
def client_create(
    name: Name, scope: Annotated[list[Scope], typer.Option("--scope", help="Scope (repeatable)")]
) -> None:
    """Create an API client; prints its key "<id>.<secret>" (shown only now; send it as a Bearer token)."""
    credential = _db(lambda s: accounts.create_client(s, name, [x.value for x in scope], audit_actor()))
    audit("starter.py api-client create", None, client=name, scopes=" ".join(sorted(x.value for x in scope)))
    console.print(f"API client [bold]{name}[/bold] created with {', '.join(x.value for x in scope)}")
    console.print(f"key (shown once): [bold]{credential}[/bold]")
    console.print(f"use: Authorization: Bearer {credential.split('.')[0]}.…  against {internal_url()}/api/…")


@client_app.command("list")
def client_list() -> None:
    """API clients, their scopes and whether they are revoked (never their secrets)."""

    def rows(session: Session) -> list[tuple[str, str, str, str]]:
        clients = session.exec(select(ApiClient).order_by(col(ApiClient.name)))
        return [(c.name, c.key_id, c.scopes, "revoked" if c.revoked_at else "active") for c in clients]

    table = Table("client", "key id", "scopes", "state")
    for row in _db(rows):
        table.add_row(*row)
    console.print(table)


@client_app.command("revoke")
def client_revoke(name: Name) -> None:
    """The client's key stops working on its next request."""
    _db(lambda s: accounts.revoke_client(s, name))
    audit("starter.py api-client revoke", None, client=name)
    console.print(f"API client {name} revoked")


def audit_actor() -> str:
    from cli.common import identity

    return identity()


def internal_url() -> str:
    return get_settings().internal_base_url.rstrip("/")
