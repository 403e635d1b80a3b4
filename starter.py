"""Staff and operations CLI: the same actions as the Temporal UI, from the shell.

    python starter.py status K-1001
    python starter.py pay K-1001 49.90 --reference BANK-2026-11-22-17
    python starter.py hold K-1001 --until 2026-12-15 --reason "customer in hospital"
    python starter.py release-dunning K-1001 --reason "heirs confirmed, estate pays"
    python starter.py sweep
    python starter.py simulate de-follow-up-terminate --start 2025-12-01 --end 2026-12-01
    python starter.py bank queue | campaign report | agency court K-1007 | staff add mia --role clerk
    python starter.py report recovery --plan de-follow-up --from 2026-01-01 --json

Bad input is rejected with a message naming the problem, and changes nothing. The commands live in
cli/: the case and operations (cli/case.py) at the top level, the others as sub-commands.
"""

from __future__ import annotations

from cli.agency import app as agency_app
from cli.auth import client_app, staff_app
from cli.bank import bank_app
from cli.campaign import app as campaign_app
from cli.case import app
from cli.report import report
from cli.simulation import simulate

app.add_typer(bank_app, name="bank")  # bank statements (camt.053) and the manual queue
app.add_typer(campaign_app, name="campaign")  # abandoned-quote campaigns: experiment results
app.add_typer(agency_app, name="agency")  # agents, handover, court dunning
app.add_typer(staff_app, name="staff")  # who may sign in
app.add_typer(client_app, name="api-client")  # which systems may call the internal app
app.command("simulate")(simulate)  # what-if simulation of a dunning plan over the recorded history
app.command("report")(report)  # collections analytics (issue #16)

__all__ = ["app"]

if __name__ == "__main__":
    app()
