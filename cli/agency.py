"""`starter.py agency …`: agents, their calendar and tokens; the handover and the court dunning of a case.

    python starter.py agency absence A-7 --from 2026-12-01 --to 2026-12-05 --reason holiday
    python starter.py agency supervisor A-7 S-1
    python starter.py agency handover K-1001                 # the agent's routine: attempts, due, outcome
    python starter.py agency attempt K-1001 --agent A-7 --not-reached
    python starter.py agency outcome K-1001 promise_to_pay --agent A-7 --pay-by 2026-12-10
    python starter.py agency court K-1001                    # the court dunning: state, deadlines, limitation
    python starter.py agency court-event K-1001 served --on 2026-12-02
    python starter.py agency enforcement K-1001
    python starter.py agency court-pdf K-1001 --out application.pdf
    python starter.py agency notes K-1001                    # the customer notes of the case

Bad input is rejected with a message naming the problem (the workflows' validators decide), and
changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlmodel import select
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.agency import add_absence, notes_for_case, set_supervisor
from cli.common import CliError, audit, console, identity, ledger, run
from core.money import parse_amount
from models.agency import CourtDocument, LogAttempt, OutcomeKind, RecordOutcome
from models.court import CourtApproval, CourtEventInput, CourtEventKind
from workflows.client import case_workflow_id
from workflows.court import CourtDunning
from workflows.dunning import DunningCase
from workflows.handover import AgentHandover

app = typer.Typer(help="Agency handover and court dunning.", no_args_is_help=True)
T = TypeVar("T")

Contract = Annotated[str, typer.Argument(help="Contract number, e.g. K-1001")]


async def child_id(client: Client, contract: str, kind: str) -> str:
    """`<case id>/handover` or `<case id>/court` of the contract's case."""
    try:
        status = await client.get_workflow_handle_for(DunningCase.run, case_workflow_id(contract)).query(
            DunningCase.status
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise CliError(f"no dunning case for contract_number {contract!r}") from error
        raise
    return f"{status.case_id}/{kind}"


def show(data: Any) -> None:
    console.print_json(data.model_dump_json(exclude={"rules"}))


@app.command()
def absence(
    agent: Annotated[str, typer.Argument(help="Agent code")],
    starts: Annotated[datetime, typer.Option("--from", formats=["%Y-%m-%d"])],
    ends: Annotated[datetime, typer.Option("--to", formats=["%Y-%m-%d"])],
    reason: str = "",
) -> None:
    """Enter an absence (both days included): the agent's handover tasks go to the team buddy."""
    ledger(lambda s: add_absence(s, agent, starts.date(), ends.date(), reason))
    console.print(f"{agent} absent {starts:%Y-%m-%d} – {ends:%Y-%m-%d}")


@app.command()
def supervisor(agent: Annotated[str, typer.Argument()], supervisor_code: Annotated[str, typer.Argument()]) -> None:
    """Set the supervisor who hears of missed contact deadlines."""
    ledger(lambda s: set_supervisor(s, agent, supervisor_code))
    console.print(f"{agent}: supervisor {supervisor_code}")


@app.command()
def handover(contract: Contract) -> None:
    """The agency handover of the contract's case: assignee, deadlines, attempts, escalations, outcome."""

    async def act(client: Client) -> Any:
        handle = client.get_workflow_handle_for(AgentHandover.run, await child_id(client, contract, "handover"))
        return await handle.query(AgentHandover.status)

    show(run(act))


@app.command()
def attempt(
    contract: Contract,
    agent: Annotated[str, typer.Option(help="Agent code")],
    reached: Annotated[bool, typer.Option("--reached/--not-reached")] = False,
    note: str = "",
) -> None:
    """Log a call attempt for the agent."""

    async def act(client: Client) -> Any:
        handle = client.get_workflow_handle_for(AgentHandover.run, await child_id(client, contract, "handover"))
        return await handle.execute_update(AgentHandover.log_attempt, LogAttempt(reached=reached, note=note, by=agent))

    show(run(act))
    audit("starter.py agency attempt", contract, agent=agent, reached=reached)


@app.command()
def outcome(
    contract: Contract,
    kind: Annotated[OutcomeKind, typer.Argument()],
    agent: Annotated[str, typer.Option(help="Agent code")],
    pay_by: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    amount: Annotated[str | None, typer.Option(help="EUR, e.g. 49.90")] = None,
    instalments: int | None = None,
    first_instalment_on: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None,
    reference: str = "",
    note: str = "",
) -> None:
    """Record the outcome of the handover; the case acts on it."""
    try:
        cents = parse_amount(amount) if amount else None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--amount") from None
    request = RecordOutcome(
        kind=kind,
        pay_by=pay_by.date() if pay_by else None,
        amount_cents=cents,
        instalments=instalments,
        first_instalment_on=first_instalment_on.date() if first_instalment_on else None,
        reference=reference,
        note=note,
        by=agent,
    )

    async def act(client: Client) -> Any:
        handle = client.get_workflow_handle_for(AgentHandover.run, await child_id(client, contract, "handover"))
        return await handle.execute_update(AgentHandover.record_outcome, request)

    show(run(act))
    audit("starter.py agency outcome", contract, agent=agent, outcome=kind.value)


@app.command()
def court(contract: Contract) -> None:
    """The court dunning of the contract's case: state, deadlines, limitation date, journal."""

    async def act(client: Client) -> Any:
        handle = client.get_workflow_handle_for(CourtDunning.run, await child_id(client, contract, "court"))
        return await handle.query(CourtDunning.status)

    show(run(act))


@app.command("court-event")
def court_event(
    contract: Contract,
    kind: Annotated[CourtEventKind, typer.Argument()],
    on: Annotated[datetime, typer.Option("--on", formats=["%Y-%m-%d"])],
    reference: str = "",
    note: str = "",
) -> None:
    """Record a court event (issued, served, objection, …); impossible events are rejected."""
    event = CourtEventInput(kind=kind, occurred_on=on.date(), reference=reference, note=note, by=identity())

    async def act(client: Client) -> Any:
        handle = client.get_workflow_handle_for(CourtDunning.run, await child_id(client, contract, "court"))
        return await handle.execute_update(CourtDunning.record_event, event)

    show(run(act))
    audit("starter.py agency court-event", contract, event=kind.value, on=on.date())


@app.command()
def enforcement(contract: Contract) -> None:
    """Apply for the enforcement order (within six months of the payment order's service)."""

    async def act(client: Client) -> Any:
        handle = client.get_workflow_handle_for(CourtDunning.run, await child_id(client, contract, "court"))
        return await handle.execute_update(CourtDunning.apply_for_enforcement_order, CourtApproval(approver=identity()))

    show(run(act))
    audit("starter.py agency enforcement", contract)


@app.command("court-pdf")
def court_pdf(contract: Contract, out: Annotated[Path, typer.Option(help="Where to write the PDF")]) -> None:
    """Write the court application PDF (for review before approval) to a file."""

    async def act(client: Client) -> str:
        return (await child_id(client, contract, "x")).removesuffix("/x")

    case_id = run(act)

    def read(session: Any) -> bytes | None:
        query = select(CourtDocument).where(CourtDocument.case_id == case_id, CourtDocument.kind == "application")
        document = session.exec(query).first()
        return document.pdf if document else None

    pdf = ledger(read)
    if pdf is None:
        console.print(f"[red]error:[/red] no court application PDF for case {case_id}")
        raise typer.Exit(2)
    out.write_bytes(pdf)
    console.print(f"{out} ({len(pdf)} bytes)")


@app.command()
def notes(contract: Contract) -> None:
    """The customer notes of the contract's current case (attempts, contacts, escalations, outcome)."""

    async def act(client: Client) -> str:
        return (await child_id(client, contract, "x")).removesuffix("/x")

    case_id = run(act)
    for note in ledger(lambda s: notes_for_case(s, case_id)):
        console.print(f"{note.at:%Y-%m-%d %H:%M}  {note.author:<10} {note.kind:<10} {note.text}")
