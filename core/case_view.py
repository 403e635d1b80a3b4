"""How a case reads in the Temporal UI: pure functions from state to text.

The current details are Markdown, rendered by the UI's `/render` page in a frame whose stylesheet
zeroes every element's padding and border (`* { padding: 0; border: 0 }`, `table { border-spacing: 0 }`)
and keeps newlines (`white-space: pre-line`). A Markdown table therefore renders as a <table> whose
cells touch ("K-1003-P129.11.2026 – 29.12.202629.11.202632,50 €"), and a list that follows a line of
text without a blank line stays text with literal dashes. So: no tables, one list item per premium with
labelled fields, and a blank line before every list (docs/img/temporal-ui-current-details.png).
The texts per stage come from the catalogue (core/steps.py), so they are true for every stage.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from core.money import format_eur
from core.steps import CLOSED_STAGES, DECISION_STAGES, stage_text, step_spec, waits_for
from models.case import CaseState
from models.plan import PlanStep


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
    credit = f" (credit {format_eur(state.arrears.credit_cents)})" if state.arrears.credit_cents else ""
    lines = [
        f"**{stage_text(state.stage)}**",
        "",
        f"- Open amount: **{format_eur(state.arrears.balance_cents)}**{credit}",
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
        lines.append(f"- Next: **{step.key}** ({step.summary or step_spec(step.kind).title}) at {local(step_at, tz)}")
    else:
        through = state.next_step >= len(state.plan.steps) and state.stage not in DECISION_STAGES
        lines.append(f"- Waiting for: {waits_for(state.stage)}" + (" (no further step in the plan)" if through else ""))
    if state.arrears.items:
        lines += ["", "**Open premiums**", ""]
        lines += [
            f"- {i.premium_id}: {i.period}, due {i.due_date:%d.%m.%Y}, open **{format_eur(i.open_cents)}**"
            for i in state.arrears.items
        ]
    if state.steps_done:
        lines += ["", "**Steps done**", ""]
        lines += [
            f"- {local(s.at, tz)} {s.key}"
            + (f" via {s.channel}" if s.channel else "")
            + (f", {format_eur(s.total_cents)}" if s.total_cents is not None else "")
            for s in state.steps_done
        ]
    return "\n".join(lines)
