"""`starter.py campaign …`: the abandoned-quote campaign from the shell.

    python starter.py campaign report                  # every experiment, as of now
    python starter.py campaign report --as-of 2027-01-31T00:00:00+01:00 --json
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from activities.campaign import campaign_report
from core.campaign import CAMPAIGN_PLANS, ExperimentReport
from infra.config import get_settings
from ledger.db import make_engine, migrate

app = typer.Typer(help="Abandoned-quote campaigns: experiment results.", no_args_is_help=True, add_completion=False)
console = Console()


def parse_as_of(value: str | None) -> datetime:
    if not value:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"--as-of must be ISO 8601 with an offset, got {value!r}") from None
    if moment.tzinfo is None:
        raise typer.BadParameter(f"--as-of needs a UTC offset (e.g. {value}+01:00), got {value!r}")
    return moment


def print_report(report: ExperimentReport) -> None:
    table = Table(title=f"Experiment {report.experiment} (pre-set sample size {report.sample_size_per_arm} per arm)")
    for column in ("arm", "quotes (window closed)", "conversions", "rate", "still open"):
        table.add_column(column)
    for arm in report.arms:
        rate = f"{arm.rate * 100:.2f} %" if arm.rate is not None else "–"
        table.add_row(arm.arm, str(arm.quotes), str(arm.conversions), rate, str(arm.pending))
    console.print(table)
    if report.test is not None:
        console.print(f"z = {report.test.z:.3f}, p = {report.test.p_value:.4f}")
    if report.lift is not None:
        lift = report.lift
        console.print(
            f"incremental lift {lift.absolute * 100:+.2f} pp "
            f"({lift.confidence * 100:.0f} % CI {lift.low * 100:+.2f} … {lift.high * 100:+.2f} pp)"
        )
    console.print(f"[bold]{report.verdict}[/bold]\n")


@app.command()
def report(
    as_of: Annotated[str | None, typer.Option(help="evaluate as of this moment (ISO 8601 with offset)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
) -> None:
    """Conversion within the window per arm, the z-test at the pre-set sample size, holdout lift."""
    moment = parse_as_of(as_of)
    settings = get_settings()
    migrate(settings.effective_database_url)
    engine = make_engine(settings.effective_database_url)
    try:
        reports = campaign_report(engine, CAMPAIGN_PLANS[settings.campaign_plan], moment)
    finally:
        engine.dispose()
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in reports], indent=2))
        return
    for item in reports:
        print_report(item)
