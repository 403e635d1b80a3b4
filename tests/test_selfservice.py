"""The portal's guardrails (issue #14, DOMAIN.md §11) as pure rules, and how the case's decider takes
a customer's arrangement or request: worked examples without Temporal (tests/test_decider.py's way)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from core.case import commands as c
from core.case import events as e
from core.case.decider import Case
from core.case.refusals import customer_refusal, refusal
from core.selfservice import judge, offer, schedule
from models.case import CaseStage, CustomerArrangement, CustomerRequest, HoldKind
from models.plan import SelfServiceBand, SelfServiceRules
from tests.test_decider import MONDAY, arrears, at_reminder, run

RULES = SelfServiceRules()  # the engine's defaults
TODAY = date(2026, 3, 2)


def instalments(count: int, first_due: date = TODAY + timedelta(days=7)) -> CustomerArrangement:
    return CustomerArrangement(kind="instalments", instalments=count, first_due=first_due)


def deferral(days: int) -> CustomerArrangement:
    return CustomerArrangement(kind="deferral", pay_by=TODAY + timedelta(days=days))


@pytest.mark.parametrize(
    ("balance", "max_instalments", "min_cents", "deferral_days"),
    [
        (19_999, 0, 0, 14),  # below 200 EUR: one deferral of up to 14 days, no instalments
        (20_000, 4, 5_000, 14),  # 200–1,000 EUR: up to 4 instalments of at least 50 EUR, or a deferral
        (100_000, 4, 5_000, 14),
        (100_001, 6, 10_000, 0),  # above 1,000 EUR: up to 6 instalments of at least 100 EUR
    ],
)
def test_the_default_bands_are_domain_md_section_11(
    balance: int, max_instalments: int, min_cents: int, deferral_days: int
) -> None:
    band = RULES.band_for(balance)
    assert (band.max_instalments, band.min_instalment_cents, band.max_deferral_days) == (
        max_instalments,
        min_cents,
        deferral_days,
    )


def test_the_minimum_instalment_caps_the_count_offered() -> None:
    assert offer(RULES, 20_000, TODAY).max_instalments == 4  # 4 × 50 EUR
    assert offer(RULES, 19_999, TODAY).instalments is False
    assert offer(RULES, 25_000, TODAY).max_instalments == 4
    assert offer(RULES, 100_001, TODAY).max_instalments == 6


def test_inside_the_guardrails_and_the_schedule_adds_up_to_the_cent() -> None:
    assert judge(RULES, instalments(3), 50_001, TODAY, used=0).ok
    plan = schedule(instalments(3), 50_002)
    assert [i.amount_cents for i in plan] == [16_668, 16_667, 16_667]
    assert [i.due for i in plan] == [date(2026, 3, 9), date(2026, 4, 9), date(2026, 5, 9)]
    assert judge(RULES, deferral(14), 15_000, TODAY, used=0).ok


@pytest.mark.parametrize(
    ("arrangement", "balance", "used", "code"),
    [
        (instalments(5), 50_000, 0, "too_many_instalments"),
        (instalments(4), 15_000 * 1, 0, "no_instalments"),
        (instalments(1), 50_000, 0, "too_few_instalments"),
        (instalments(3, TODAY + timedelta(days=15)), 50_000, 0, "first_due_too_late"),
        (instalments(3, TODAY - timedelta(days=1)), 50_000, 0, "date_in_past"),
        (deferral(15), 15_000, 0, "deferral_too_long"),
        (deferral(0), 15_000, 0, "date_not_future"),
        (deferral(7), 150_000, 0, "no_deferral"),
        (instalments(3), 50_000, 1, "already_used"),
    ],
)
def test_outside_the_guardrails_names_why(arrangement: CustomerArrangement, balance: int, used: int, code: str) -> None:
    verdict = judge(RULES, arrangement, balance, TODAY, used=used)
    assert verdict.code == code and verdict.message


def test_bands_must_rise_and_end_open() -> None:
    with pytest.raises(ValidationError, match="last band"):
        SelfServiceRules(bands=[SelfServiceBand(up_to_cents=100)])
    with pytest.raises(ValidationError, match="rise strictly"):
        SelfServiceRules(bands=[SelfServiceBand(up_to_cents=500), SelfServiceBand(up_to_cents=100), SelfServiceBand()])


# --- the case ----------------------------------------------------------------------------------


def at_reminder_with(balance: int) -> Case:
    case = at_reminder()
    case.state.arrears = arrears(balance)
    return case


def test_the_case_agrees_a_customers_instalment_plan_once_and_sends_the_next_to_a_clerk() -> None:
    case = at_reminder_with(50_000)
    arrangement = instalments(3, date(2026, 3, 9))
    assert customer_refusal(case, arrangement, MONDAY) is None
    decided = run(case, e.CustomerArranged(arrangement)).case
    hold = decided.state.hold
    assert hold is not None and hold.kind == HoldKind.INSTALMENTS and hold.set_by == "customer portal"
    assert [i.amount_cents for i in hold.schedule] == [16_668, 16_666, 16_666]
    assert decided.state.self_service_arrangements == 1
    again = customer_refusal(decided, deferral(5), MONDAY)
    assert again is not None and again.code == "already_used"


def test_a_customer_cannot_arrange_while_a_person_decides() -> None:
    case = at_reminder_with(50_000)
    case.state.stage = CaseStage.COURT_APPROVAL
    verdict = customer_refusal(case, instalments(3, date(2026, 3, 9)), MONDAY)
    assert verdict is not None and verdict.code == "person_decides"
    case = at_reminder_with(50_000)
    case.state.court_approved_by = "sam"
    assert customer_refusal(case, instalments(3, date(2026, 3, 9)), MONDAY) is not None


def test_a_dispute_pauses_escalation_and_opens_the_request() -> None:
    case = at_reminder_with(12_000)
    decision = run(case, e.CustomerAsked(CustomerRequest(request_id=7, kind="dispute")))
    hold = decision.case.state.hold
    assert hold is not None and hold.kind == HoldKind.DISPUTE
    [opened] = [command for command in decision.commands if isinstance(command, c.OpenRequest)]
    assert opened.request.request_id == 7 and opened.request.key == f"{case.state.case_id}:request:7"


def test_a_message_opens_a_request_and_changes_nothing_else() -> None:
    case = at_reminder_with(12_000)
    decision = run(case, e.CustomerAsked(CustomerRequest(request_id=8, kind="message")))
    assert decision.case.state.hold is None and decision.case.state.stage == case.state.stage
    assert [type(x) for x in decision.commands if not isinstance(x, c.Publish)] == [c.OpenRequest]


def test_a_request_of_an_unknown_kind_is_refused() -> None:
    case = at_reminder_with(12_000)
    problem = refusal(case, e.CustomerAsked(CustomerRequest(request_id=9, kind="pizza")), MONDAY)
    assert problem is not None and "kind must be one of" in problem
