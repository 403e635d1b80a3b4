"""The case's commands (staff actions, the same as in the Temporal UI) and operations (sweep, schedule,
coverage, demo data), mounted as the top level of `starter.py`.

    python starter.py status K-1001
    python starter.py pay K-1001 49.90 --reference BANK-2026-11-22-17
    python starter.py hold K-1001 --until 2026-12-15 --reason "customer in hospital"
    python starter.py release-dunning K-1001 --reason "heirs confirmed, estate pays"
    python starter.py sweep

Bad input is rejected with a message naming the problem, and changes nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.service import RPCError, RPCStatusCode

from cli.common import CliError, audit, console, identity, ledger, run
from core.money import format_eur, parse_amount
from core.timezone import BUSINESS_TIMEZONE
from infra.config import get_settings
from models.activities import SweepRequest, SweepResult
from models.case import (
    AgreeInstalments,
    ApproveCourtFiling,
    Cancel,
    CaseStatus,
    Dispute,
    EscalateNow,
    HoldRequest,
    PremiumOverdue,
    PromiseToPay,
    RecordPayment,
    Resume,
    TerminationDecision,
    WriteOff,
)
from workflows.client import case_workflow_id, start_or_join_case
from workflows.dunning import DunningCase
from workflows.sweep import LedgerSweep

app = typer.Typer(help="Dunning engine: staff actions and operations.", no_args_is_help=True, add_completion=False)
SWEEP_SCHEDULE_ID = "ledger-sweep-daily"
BERLIN = ZoneInfo(BUSINESS_TIMEZONE)


@app.callback()
def settings_first() -> None:
    """Every command reads the settings first: ENVIRONMENT=production with unsafe settings stops here,
    naming every problem, before anything is sent or written (config.get_settings)."""
    get_settings()


def handle(client: Client, contract: str) -> WorkflowHandle[DunningCase, CaseStatus]:
    return client.get_workflow_handle_for(DunningCase.run, case_workflow_id(contract))


def amount_cents(text: str) -> int:
    try:
        cents = parse_amount(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    if cents <= 0:
        raise typer.BadParameter(f"amount must be > 0, got {text}")
    return cents


def local(moment: datetime | None) -> str:
    return moment.astimezone(BERLIN).strftime("%d.%m.%Y %H:%M:%S") if moment else "—"


def show(status: CaseStatus) -> None:
    table = Table(title=f"{status.case_id} — {status.stage}{' (closed)' if status.closed else ''}", show_header=False)
    table.add_row("plan", f"{status.plan_id} v{status.plan_version}")
    table.add_row(
        "open",
        format_eur(status.balance_cents)
        + (f"  credit {format_eur(status.credit_cents)}" if status.credit_cents else ""),
    )
    table.add_row(
        "hold",
        f"{status.hold.kind}: {status.hold.reason} until {status.hold.until or 'resumed'}" if status.hold else "—",
    )
    table.add_row("deadline", local(status.deadline))
    table.add_row("next", f"{status.next_step} at {local(status.next_step_at)}" if status.next_step else "—")
    for item in status.items:
        table.add_row(f"item {item.premium_id}", f"{item.period}  due {item.due_date}  {format_eur(item.open_cents)}")
    for step in status.steps_done:
        table.add_row(
            f"done {step.key}", f"{step.at:%Y-%m-%d %H:%M} {step.channel or ''} {format_eur(step.total_cents or 0)}"
        )
    for event in status.journal[-8:]:
        table.add_row("journal", f"{local(event.at)} {event.text}")
    console.print(table)


Contract = Annotated[str, typer.Argument(help="Contract number, e.g. K-1001")]
Reason = Annotated[str, typer.Option("--reason", help="Why (kept in the case journal)")]


@app.command()
def status(contract: Contract) -> None:
    """Show the whole state of the contract's dunning case."""

    async def act(client: Client) -> CaseStatus:
        try:
            return await handle(client, contract).query(DunningCase.status)
        except WorkflowQueryFailedError as error:
            raise CliError(str(error)) from error
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise CliError(f"no dunning case for contract_number {contract!r}") from error
            raise

    show(run(act))


def update(
    contract: str, call: Callable[[WorkflowHandle[DunningCase, CaseStatus]], Awaitable[Any]], command: str
) -> None:
    """Run a case update as the CLI's identity; an accepted one goes into the audit trail."""

    async def act(client: Client) -> Any:
        return await call(handle(client, contract))

    result = run(act)
    audit(f"starter.py {command}", contract)
    if isinstance(result, CaseStatus):
        show(result)
    else:
        console.print(result)


@app.command()
def pay(
    contract: Contract,
    amount: Annotated[str, typer.Argument(help="Amount in EUR, e.g. 49.90")],
    reference: Annotated[str, typer.Option(help="Payment reference (books once per reference)")],
    premium: Annotated[str | None, typer.Option(help="Premium the payer named")] = None,
) -> None:
    """Record a payment on the case (allocated costs → interest → principal, oldest first)."""
    cents = amount_cents(amount)
    update(
        contract,
        lambda h: h.execute_update(
            DunningCase.record_payment, RecordPayment(amount_cents=cents, reference=reference, premium_id=premium)
        ),
        "pay",
    )


@app.command()
def hold(contract: Contract, until: Annotated[datetime, typer.Option(formats=["%Y-%m-%d"])], reason: Reason) -> None:
    """Pause escalation until a date."""
    update(
        contract,
        lambda h: h.execute_update(DunningCase.hold, HoldRequest(until=until.date(), reason=reason, by=identity())),
        "hold",
    )


@app.command()
def resume(contract: Contract, reason: Reason = "") -> None:
    """End a hold, promise or dispute; retry a step that needed attention."""
    update(contract, lambda h: h.execute_update(DunningCase.resume, Resume(reason=reason, by=identity())), "resume")


@app.command()
def promise(
    contract: Contract,
    pay_by: Annotated[datetime, typer.Option("--by-date", formats=["%Y-%m-%d"])],
    amount: Annotated[str | None, typer.Option(help="Promised amount in EUR (default: all)")] = None,
    note: str = "",
) -> None:
    """Record a promise to pay: hold until the date, resume dunning if it is broken."""
    cents = amount_cents(amount) if amount is not None else None
    update(
        contract,
        lambda h: h.execute_update(
            DunningCase.promise_to_pay, PromiseToPay(pay_by=pay_by.date(), amount_cents=cents, note=note, by=identity())
        ),
        "promise",
    )


@app.command()
def instalments(
    contract: Contract,
    count: Annotated[int, typer.Option(min=2, max=24, help="Number of monthly instalments")],
    first: Annotated[datetime, typer.Option("--first", formats=["%Y-%m-%d"], help="Due date of the first")],
    note: str = "",
) -> None:
    """Agree monthly instalments over the whole open balance (the first takes the odd cents)."""
    from core.instalments import equal_instalments

    async def agree(h: WorkflowHandle[DunningCase, CaseStatus]) -> CaseStatus:
        balance = (await h.query(DunningCase.status)).balance_cents
        if balance < count:
            raise CliError(f"the open balance is {balance} cents: nothing to split into {count} instalments")
        plan = equal_instalments(balance, count, first.date())
        request = AgreeInstalments(instalments=plan, note=note, by=identity())
        return await h.execute_update(DunningCase.agree_instalments, request)

    update(contract, agree, "instalments")


@app.command()
def dispute(contract: Contract, reason: Reason) -> None:
    """The customer disputes the claim: escalation stops until resumed."""
    update(contract, lambda h: h.execute_update(DunningCase.dispute, Dispute(reason=reason, by=identity())), "dispute")


@app.command("write-off")
def write_off(contract: Contract, reason: Reason) -> None:
    """Write off the open balance and close the case (the contract is reactivated)."""
    update(
        contract, lambda h: h.execute_update(DunningCase.write_off, WriteOff(reason=reason, by=identity())), "write-off"
    )


@app.command()
def escalate(contract: Contract, reason: Reason) -> None:
    """Run the next step now."""
    update(
        contract,
        lambda h: h.execute_update(DunningCase.escalate_now, EscalateNow(reason=reason, by=identity())),
        "escalate",
    )


@app.command()
def cancel(contract: Contract, reason: Reason) -> None:
    """Stop dunning (e.g. premium booked in error); the sweep will not restart it."""
    update(contract, lambda h: h.execute_update(DunningCase.cancel, Cancel(reason=reason, by=identity())), "cancel")


@app.command("approve-termination")
def approve_termination(contract: Contract, note: str = "") -> None:
    """Approve the proposed termination (§38(3) VVG); paying everything within a month voids it."""
    update(
        contract,
        lambda h: h.execute_update(DunningCase.approve_termination, TerminationDecision(by=identity(), note=note)),
        "approve-termination",
    )


@app.command("decline-termination")
def decline_termination(contract: Contract, note: str = "") -> None:
    """Decline the proposed termination: the contract stays, dunning goes on."""
    update(
        contract,
        lambda h: h.execute_update(DunningCase.decline_termination, TerminationDecision(by=identity(), note=note)),
        "decline-termination",
    )


@app.command("approve-court")
def approve_court(contract: Contract, note: str = "") -> None:
    """Approve the prepared court dunning application."""
    update(
        contract,
        lambda h: h.execute_update(
            DunningCase.approve_court_filing, ApproveCourtFiling(approver=identity(), note=note)
        ),
        "approve-court",
    )


@app.command()
def start(
    contract: Contract,
    premium: Annotated[str, typer.Argument(help="Overdue premium id")],
    plan: Annotated[str | None, typer.Option(help="Plan id (default: the contract's)")] = None,
) -> None:
    """Start the contract's case for an overdue premium, or add the premium to the running case."""
    settings = get_settings()
    if plan is not None and plan not in settings.selectable_plan_ids():
        raise typer.BadParameter(f"choose one of {', '.join(settings.selectable_plan_ids())}", param_hint="--plan")

    async def act(client: Client) -> str:
        h = await start_or_join_case(
            client, settings.task_queue, contract, PremiumOverdue(premium_id=premium), plan or settings.default_plan
        )
        return h.id

    console.print(f"case {run(act)}")


@app.command()
def sweep(as_of: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"])] = None) -> None:
    """Run the ledger sweep now (the Schedule runs it every morning)."""
    settings = get_settings()
    day = as_of.date() if as_of else None

    async def act(client: Client) -> SweepResult:
        wf_id = f"ledger-sweep-manual-{(day or date.today()).isoformat()}-{datetime.now():%H%M%S}"
        return await client.execute_workflow(
            LedgerSweep.run, SweepRequest(as_of=day), id=wf_id, task_queue=settings.task_queue
        )

    result = run(act)
    console.print(
        f"sweep {result.as_of}: {result.premiums_seen} overdue premiums signalled to their cases "
        f"({result.cases_signalled} start-or-join calls)"
    )


async def ensure_sweep_schedule(client: Client, task_queue: str, hour: int = 6) -> str:
    """The daily sweep Schedule, in BUSINESS_TIMEZONE, created once (kept as it is when it exists)."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(LedgerSweep.run, SweepRequest(), id="ledger-sweep", task_queue=task_queue),
        spec=ScheduleSpec(
            calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(hour)])], time_zone_name=BUSINESS_TIMEZONE
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)),
    )
    try:
        await client.create_schedule(SWEEP_SCHEDULE_ID, schedule)
        return "created"
    except ScheduleAlreadyRunningError:

        def keep(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(SWEEP_SCHEDULE_ID).update(keep)
        return "updated"


@app.command()
def schedule() -> None:
    """Create (or update) the daily ledger sweep Schedule."""
    settings = get_settings()
    console.print(f"schedule {SWEEP_SCHEDULE_ID}: {run(lambda c: ensure_sweep_schedule(c, settings.task_queue))}")


@app.command()
def covered(
    contract: Contract,
    at: Annotated[str, typer.Option(help="Moment with offset, e.g. 2026-11-22T10:00:00+01:00")],
) -> None:
    """Was the contract covered at that moment? (from its status history in the ledger)"""
    from core.coverage import status_at
    from ledger.db import make_engine, session_scope
    from ledger.service import NotFound, coverage_history

    try:
        moment = datetime.fromisoformat(at)
        with session_scope(make_engine(get_settings().effective_database_url)) as session:
            answer = status_at(coverage_history(session, contract), moment)
    except NotFound as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--at") from None
    since = f" since {local(answer.since)}" if answer.since else ""
    verdict = "[green]covered[/green]" if answer.covered else "[red]NOT covered[/red]"
    console.print(f"{contract} at {local(moment)}: {verdict} ({answer.status}{since}: {answer.reason})")


@app.command("release-dunning")
def release_dunning(contract: Contract, reason: Reason) -> None:
    """Release a contract stopped for a person (MD07, debtor deceased): the premiums blocked for the
    stop are dunned again by the next sweep or event; premiums staff cancelled stay blocked."""
    from ledger.service import release_dunning as release

    released = ledger(lambda session: release(session, contract, by=identity(), reason=reason, at=datetime.now(UTC)))
    audit("starter.py release-dunning", contract, reason=reason)
    console.print(
        f"{contract}: {released.code} stop released; dunned again: {', '.join(released.unblocked) or 'nothing'}"
    )
    for premium_id, why in released.still_blocked.items():
        console.print(f"  still blocked: {premium_id} ({why})")
    if released.credit_used_cents:
        console.print(f"  credit used at once: {format_eur(released.credit_used_cents)}")
    console.print("  a case still running stays on hold until resumed: python starter.py resume " + contract)


@app.command()
def demo() -> None:
    """Seed the demo ledger (once per data folder) and start its cases."""
    from dev.demo import seed
    from ledger.db import make_engine, migrate
    from ledger.inbound import Inbound

    settings = get_settings()
    migrate(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    done = run(lambda c: seed(Inbound(engine, c, settings)))
    console.print("\n".join(done) if done else "demo data already seeded")
