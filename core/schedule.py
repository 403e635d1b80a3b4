"""When is the next step of a case due? Pure function of the case state.

Steps anchored on `due` count from the *current* oldest unpaid item, so after a partial
payment the next step re-anchors; the index of the next step never moves backwards or skips,
so nothing is sent twice or left out.
"""

from __future__ import annotations

from datetime import datetime

from core.calendar import dispatch_moment, start_of_day
from models.case import CaseState
from models.plan import Anchor, PlanStep, StepKind


def due_anchor(state: CaseState) -> datetime:
    """The anchor of the oldest unpaid item (or the case opening if only fees are open)."""
    plan = state.plan
    anchors: list[datetime] = []
    for item in state.arrears.items:
        if plan.anchor_mode == "due_date":
            anchors.append(start_of_day(item.due_date, plan.timezone))
        else:
            anchors.append(state.joined_at.get(item.premium_id, state.opened_at))
    return min(anchors) if anchors else state.opened_at


def next_step(state: CaseState) -> PlanStep | None:
    steps = state.plan.steps
    return steps[state.next_step] if state.next_step < len(steps) else None


def step_due_at(state: CaseState, step: PlanStep) -> datetime:
    if step.after == Anchor.DUE:
        base = due_anchor(state)
    elif step.after == Anchor.DEADLINE:
        if state.deadline is None:
            raise ValueError(f"step {step.key} counts from the deadline, but no notice set one")
        base = state.deadline
    else:
        if state.handover_at is None:
            raise ValueError(f"step {step.key} counts from the handover, which has not happened")
        base = state.handover_at
    due = base + step.offset
    if state.plan.demo or step.kind == StepKind.SUSPEND_COVER:
        return due  # suspension is a legal effect at the deadline, not something sent
    # Everything sent or handed to a person waits for a working day, 08:00–20:00 local time.
    # (Reads the holiday calendar: the workflow calls this inside sandbox_unrestricted.)
    return dispatch_moment(due, state.plan.timezone, state.plan.holiday_country)
