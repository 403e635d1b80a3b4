"""The daily ledger sweep: every unpaid premium past due starts or joins its contract's case.

Run by a Schedule every morning (BUSINESS_TIMEZONE, Europe/Berlin). Idempotent: a second run on the same day
signals the same cases with premiums they already hold, which changes nothing. Then customers' portal
requests unanswered past their due date go to a supervisor, each once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.portal import PortalActivities
    from activities.sweep import SweepActivities
    from core.calendar import local_date
    from core.timezone import BUSINESS_TIMEZONE
    from models.activities import EscalateRequests, SweepRequest, SweepResult

# Issue #14 (DOMAIN.md §11): the morning sweep also escalates customers' requests left unanswered.
ESCALATES_REQUESTS = "sweep-escalates-requests"


@workflow.defn
class LedgerSweep:
    @workflow.run
    async def run(self, request: SweepRequest) -> SweepResult:
        as_of = request.as_of or local_date(workflow.now(), BUSINESS_TIMEZONE)
        result = await workflow.execute_activity_method(
            SweepActivities.start_overdue_cases,
            SweepRequest(as_of=as_of),
            start_to_close_timeout=timedelta(hours=2),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            summary=f"Start or join cases for premiums overdue on {as_of}",
        )
        details = (
            f"Sweep {as_of}: {result.premiums_seen} overdue premiums, each signalled to its contract's case "
            f"({result.cases_signalled} start-or-join calls)"
        )
        if workflow.patched(ESCALATES_REQUESTS):
            escalated = await workflow.execute_activity_method(
                PortalActivities.escalate_overdue_requests,
                EscalateRequests(now=workflow.now()),
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
                summary="Escalate customers' requests unanswered past their due date",
            )
            details += f"; {escalated.escalated} unanswered customer requests escalated ({escalated.mailed} e-mailed)"
        workflow.set_current_details(details)
        return result
