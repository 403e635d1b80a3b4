"""`starter.py bank …`: import camt.053 statements and work the manual queue from the shell.

python starter.py bank import statement.xml
python starter.py bank queue
python starter.py bank assign 17 K-1001
python starter.py bank dismiss 18 "sent back to the payer"

Who did it is the CLI's configured identity (CLI_IDENTITY), recorded with the line and in the audit trail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.table import Table

from banking import service as bank
from banking.camt import parse_camt053
from banking.inbound import BankStatements
from cli.common import audit, console, fail, identity, run
from core.money import format_eur
from infra.config import get_settings
from ledger.db import make_engine, migrate, session_scope
from ledger.inbound import Inbound
from ledger.service import LedgerError

bank_app = typer.Typer(help="Bank statements (camt.053) and the manual queue.", no_args_is_help=True)
T = TypeVar("T")


def with_statements(action: Callable[[BankStatements], Awaitable[T]]) -> T:
    settings = get_settings()
    migrate(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    return run(lambda client: action(BankStatements(Inbound(engine, client, settings))))


@bank_app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
) -> None:
    """Import a camt.053 file: matched credits are booked and their cases told; the rest is queued."""
    who = identity()
    data = file.read_bytes()
    try:
        parse_camt053(data)  # a broken file is refused before anything connects or changes
    except LedgerError as error:
        raise fail("error", error) from None
    report = with_statements(lambda s: s.import_camt053(data, who))
    console.print(
        f"{report.lines} lines: {report.booked} booked, {report.queued} queued, "
        f"{report.ignored} ignored (money out), {report.duplicates} already imported"
    )
    audit("starter.py bank import", None, file=file.name, lines=report.lines, booked=report.booked)


@bank_app.command()
def queue() -> None:
    """The manual queue: credits no rule could match."""
    settings = get_settings()
    with session_scope(make_engine(settings.effective_database_url)) as session:
        lines = bank.queue(session)
        table = Table("line", "booked", "amount", "reference / text", "why")
        for line in lines:
            amount = (
                format_eur(line.amount_cents) if line.currency == "EUR" else f"{line.amount_cents} {line.currency} ct"
            )
            text = f"{line.creditor_reference or line.end_to_end_id or ''} {line.remittance}".strip()
            table.add_row(str(line.id), str(line.booking_date or ""), amount, text, line.reason)
    console.print(table if lines else "the queue is empty")


@bank_app.command()
def assign(line: int, contract: str) -> None:
    """Book a queued line to a contract (the paying account is remembered for next time)."""
    who = identity()
    booked = with_statements(lambda s: s.assign(line, contract, who))
    audit("starter.py bank assign", booked.contract_number, line=line, payment_ref=booked.payment_ref)
    console.print(f"line {line} booked to {booked.contract_number} as {booked.payment_ref}")


@bank_app.command()
def dismiss(line: int, reason: str) -> None:
    """Take a queued line out of the queue without booking it, with the reason."""
    who = identity()
    if not 3 <= len(reason.strip()) <= 500:
        raise typer.BadParameter("must be 3..500 characters", param_hint="REASON")
    with_statements(lambda s: s.dismiss(line, reason.strip(), who))
    audit("starter.py bank dismiss", None, line=line, reason=reason.strip())
    console.print(f"line {line} dismissed")
