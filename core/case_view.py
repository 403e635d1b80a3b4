"""How a case reads in the Temporal UI: pure functions from state to text."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from core.money import format_eur
from models.case import CLOSED_STAGES, CaseState
from models.plan import PlanStep

STAGE_TEXT = {
    "overdue": "Overdue, nothing sent yet",
    "reminded": "Reminder sent",
    "notice_sent": "Qualified notice sent (§38 VVG), deadline running",
    "suspended": "Deadline passed: cover suspended",
    "sms_sent": "SMS with pay link sent",
    "agency": "Handed over to the agent",
    "court_approval": "Court application prepared: waiting for approval",
    "court_filed": "Court dunning filed",
    "paid": "Paid: contract active",
    "written_off": "Written off",
    "cancelled": "Cancelled by staff",
}


def local(moment: datetime | None, tz: str) -> str:
    return moment.astimezone(ZoneInfo(tz)).strftime("%d.%m.%Y %H:%M") if moment else "—"


def summary_line(contract_number: str, plan_id: str) -> str:
    """The static summary shown in the workflow list (≤ 200 bytes, no personal data)."""
    return f"Dunning case for contract {contract_number} (plan {plan_id})"


# The CaseStatus search attribute for each kind of hold; plain holds and promises are "on_hold".
HOLD_STATUS = {
    "dispute": "disputed",
    "attention": "attention",
    "small_shortfall": "review",
    "instalment_plan": "instalments",
}


def case_status_word(state: CaseState) -> str:
    if state.stage in CLOSED_STAGES:
        return "closed"
    if state.hold is not None:
        return HOLD_STATUS.get(state.hold.kind, "on_hold")
    return "running"


def current_details(state: CaseState, step: PlanStep | None, step_at: datetime | None) -> str:
    tz = state.plan.timezone
    lines = [
        f"**{STAGE_TEXT.get(state.stage, state.stage)}**",
        "",
        f"- Open amount: **{format_eur(state.arrears.balance_cents)}**"
        + (f" (credit {format_eur(state.arrears.credit_cents)})" if state.arrears.credit_cents else ""),
        f"- Contract status: {state.arrears.contract_status}",
    ]
    if state.deadline:
        lines.append(f"- Notice deadline: {local(state.deadline, tz)}")
    if state.hold:
        until = local(state.hold.until, tz) if state.hold.until else "until resumed"
        lines.append(f"- **On hold** ({state.hold.kind}): {state.hold.reason} — {until}")
    if state.stage in CLOSED_STAGES:
        lines.append(f"- Closed {local(state.closed_at, tz)}: {state.closed_reason}")
    elif step is not None:
        lines.append(f"- Next: **{step.key}** ({step.summary or step.kind}) at {local(step_at, tz)}")
    elif state.stage == "court_approval":
        lines.append("- Next: a person approves the court filing (update `approve_court_filing`)")
    else:
        lines.append("- Next: waiting for payment (plan completed)")
    if state.arrears.items:
        lines += ["", "| premium | period | due | open |", "|---|---|---|---|"]
        lines += [
            f"| {i.premium_id} | {i.period} | {i.due_date:%d.%m.%Y} | {format_eur(i.open_cents)} |"
            for i in state.arrears.items
        ]
    if state.steps_done:
        lines += ["", "Steps done:"]
        lines += [
            f"- {local(s.at, tz)} {s.key}"
            + (f" via {s.channel}" if s.channel else "")
            + (f", {format_eur(s.total_cents)}" if s.total_cents is not None else "")
            for s in state.steps_done
        ]
    return "\n".join(lines)
