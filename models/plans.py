"""Built-in dunning plans. Plans are data: a new plan is a new entry here (or a JSON file
validated by `DunningPlan`), never new workflow code."""

from __future__ import annotations

from datetime import timedelta

from models.messages import Channel
from models.plan import Anchor, DunningPlan, LegalBasis, PlanStep, StepKind

E, L, S = Channel.EMAIL, Channel.LETTER, Channel.SMS


D = timedelta(days=1)


def _reminder(days: int, summary: str) -> PlanStep:
    return PlanStep(key="reminder", kind=StepKind.REMINDER, offset=days * D, channels=[E, L], summary=summary)


def _notice(days: int, letter_fee_cents: int, summary: str, min_gap: timedelta | None = None) -> PlanStep:
    """The qualified notice: a letter (text form) with an e-mail copy where an address is known."""
    return PlanStep(
        key="notice",
        kind=StepKind.QUALIFIED_NOTICE,
        offset=days * D,
        channels=[L],
        copies=[E],
        fees_cents={L: letter_fee_cents},
        summary=summary,
        **({"min_gap": min_gap} if min_gap is not None else {}),
    )


def _suspend() -> PlanStep:
    return PlanStep(
        key="suspend",
        kind=StepKind.SUSPEND_COVER,
        after=Anchor.DEADLINE,
        offset=timedelta(0),
        summary="Suspend cover when the deadline passes",
    )


def _sms(
    days: int,
    summary: str,
    after: Anchor = Anchor.DEADLINE,
    copies: tuple[Channel, ...] = (),
    min_gap: timedelta | None = None,
) -> PlanStep:
    return PlanStep(
        key="sms",
        kind=StepKind.PAY_LINK_SMS,
        after=after,
        offset=days * D,
        channels=[S, E],
        copies=list(copies),
        summary=summary,
        **({"min_gap": min_gap} if min_gap is not None else {}),
    )


def _agency(days: int, summary: str) -> PlanStep:
    return PlanStep(
        key="agency", kind=StepKind.AGENCY_HANDOVER, after=Anchor.DEADLINE, offset=days * D, summary=summary
    )


def _german_follow_up() -> DunningPlan:
    """SPEC.md §4: follow-up premium, consumer, Germany.

    Version 2: the notice goes out at least 7 days after the reminder was really sent, so a case
    discovered late does not send both at once (the customer gets a week to react to the reminder).
    """
    return DunningPlan(
        id="de-follow-up",
        version=2,
        title="Folgebeitrag Verbraucher (DE)",
        steps=[
            _reminder(3, "Friendly reminder 3 days after due"),
            _notice(14, 150, "Qualified notice §38 VVG 14 days after due", min_gap=7 * D),
            _suspend(),
            _sms(1, "SMS with pay link 1 day after deadline", copies=(E,)),
            _agency(7, "Hand over to the agent 7 days after deadline"),
            PlanStep(
                key="court",
                kind=StepKind.COURT_DUNNING,
                after=Anchor.HANDOVER,
                offset=30 * D,
                summary="Court dunning 30 days after unresolved handover",
            ),
        ],
    )


def _german_follow_up_with_termination() -> DunningPlan:
    """The German plan plus the optional §38(3) termination: proposed 3 days after the deadline,
    effective only when a person approves; paying everything within a month voids it."""
    base = _german_follow_up()
    steps = list(base.steps)
    at = next(i for i, s in enumerate(steps) if s.key == "agency")
    steps.insert(
        at,
        PlanStep(
            key="terminate",
            kind=StepKind.TERMINATION,
            after=Anchor.DEADLINE,
            offset=3 * D,
            summary="Propose termination 3 days after the deadline (a person decides)",
        ),
    )
    return base.model_copy(
        update={"id": "de-follow-up-terminate", "title": "Folgebeitrag mit Kündigungsoption (DE)", "steps": steps}
    )


def _german_follow_up_with_final_reminder() -> DunningPlan:
    """The German plan with a last reminder before court: 21 days after the handover, if the agent
    got nothing, a letter (e-mail copy) says that court dunning follows without further notice; the
    court application is prepared 9 days later, as in the German plan."""
    base = _german_follow_up()
    steps = list(base.steps)
    at = next(i for i, s in enumerate(steps) if s.kind == StepKind.COURT_DUNNING)
    steps.insert(
        at,
        PlanStep(
            key="final_reminder",
            kind=StepKind.FINAL_REMINDER,
            after=Anchor.HANDOVER,
            offset=21 * D,
            channels=[L],
            copies=[E],
            summary="Final reminder before court 21 days after unresolved handover",
        ),
    )
    return base.model_copy(
        update={
            "id": "de-follow-up-final-reminder",
            "version": 1,
            "title": "Folgebeitrag mit letzter Mahnung vor Gericht (DE)",
            "steps": steps,
        }
    )


def _german_first_premium() -> DunningPlan:
    """§37 VVG: the first premium. No cover until it is paid, so nothing to suspend; the separate
    text-form notice tells the customer so. After the deadline an agent calls; withdrawal from the
    contract (Rücktritt) stays a person's decision."""
    return DunningPlan(
        id="de-first-premium",
        version=1,
        title="Erstbeitrag (DE, § 37 VVG)",
        legal_basis=LegalBasis.FIRST_PREMIUM,
        steps=[
            _reminder(3, "Reminder 3 days after the first premium fell due"),
            _notice(10, 150, "Separate notice §37(2) VVG 10 days after due"),
            _sms(1, "SMS with pay link 1 day after deadline"),
            _agency(5, "Agent calls 5 days after deadline (withdrawal is a person's decision)"),
        ],
    )


def _danish_follow_up() -> DunningPlan:
    """Denmark: three reminders at most, 10+ days apart, fee at most 100 DKK each (renteloven §9b).

    Version 2: 10 days apart also when they are really sent (min_gap), not only on paper (offsets).
    """
    return DunningPlan(
        id="dk-follow-up",
        version=2,
        title="Rykkerforløb (DK)",
        language="da",
        timezone="Europe/Copenhagen",
        holiday_country="DK",
        legal_basis=LegalBasis.DENMARK,
        currency="DKK",
        steps=[
            _reminder(3, "1st reminder (rykker) 3 days after due, free"),
            _notice(
                13, 10_000, "2nd reminder with deadline and consequences 13 days after due, 100 DKK", min_gap=10 * D
            ),
            _suspend(),
            _sms(34, "3rd and last reminder: SMS with pay link 34 days after due", after=Anchor.DUE, min_gap=10 * D),
            _agency(10, "Hand over to the agent 10 days after deadline"),
        ],
    )


def _demo(plan_id: str, m: timedelta, unit: str) -> DunningPlan:
    """The German plan with minutes (or seconds) instead of days, so a person sees cases move.
    The notice keeps one unit of time after the reminder (min_gap), as the real plan keeps a week."""
    base = _german_follow_up()
    offsets = {"reminder": 1 * m, "notice": 2 * m, "suspend": 0 * m, "sms": 1 * m, "agency": 2 * m, "court": 4 * m}
    gaps = {"notice": 1 * m}
    return base.model_copy(
        update={
            "id": plan_id,
            "title": f"Demo ({unit}, not legally effective)",
            "anchor_mode": "joined",
            "demo": True,
            "payment_period": 3 * m,
            "receipt_delay": {L: timedelta(0), E: timedelta(0)},
            "promise_grace": m,
            "steps": [
                s.model_copy(
                    update={
                        "offset": offsets[s.key],
                        "summary": _demo_summary(s.summary, offsets[s.key]),
                        "min_gap": gaps.get(s.key, timedelta(0)),
                    }
                )
                for s in base.steps
            ],
        }
    )


def _demo_summary(summary: str, offset: timedelta) -> str:
    """'Qualified notice §38 VVG 14 days after due' → 'Qualified notice §38 VVG 120 s after due'."""
    words = summary.split()
    if "days" in words or "day" in words:
        at = words.index("days") if "days" in words else words.index("day")
        words[at - 1 : at + 1] = [f"{int(offset.total_seconds())} s"]
    return " ".join(words)


BUILTIN_PLANS: dict[str, DunningPlan] = {
    p.id: p
    for p in (
        _german_follow_up(),
        _german_follow_up_with_termination(),
        _german_follow_up_with_final_reminder(),
        _german_first_premium(),
        _danish_follow_up(),
        _demo("demo", timedelta(minutes=1), "minutes"),  # make run
        _demo("demo-fast", timedelta(seconds=2), "seconds"),  # the end-to-end test
    )
}


def get_plan(plan_id: str) -> DunningPlan:
    try:
        return BUILTIN_PLANS[plan_id]
    except KeyError:
        raise KeyError(f"unknown dunning plan '{plan_id}', known: {sorted(BUILTIN_PLANS)}") from None
