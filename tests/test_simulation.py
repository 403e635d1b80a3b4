"""The what-if simulation (issue #16): the decider driven offline over recorded events.

- hand-built histories: a partial payment gets a receipt and re-anchors, a returned debit re-opens
  and is dunned again, a hold keeps the case quiet until it ends;
- the copy-free driver (`decide_owned`) and the workflow's own `decide` give the same outcomes;
- the replay check: the demo history (seeded through ledger/service.py) and a hand-built one written
  into the ledger replay to exactly what the ledger holds, and a tampered ledger is reported;
- the seeder is idempotent and leaves nothing overdue for the sweep;
- the page, the CSV and the API answer for a supervisor, and bad input is a clear 422.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import Engine, func
from sqlmodel import select
from temporalio.client import Client

from core.simulation import (
    ContractHistory,
    ContractRun,
    SimPayment,
    SimPremium,
    SimStaffAction,
    SimulationError,
    simulate_contract,
)
from core.simulation_report import csv_text, replay_defects, totals, what_if
from dev import demo_history
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from ledger.inbound import Inbound
from ledger.simulation_input import Slice, read_slice
from models.ledger import ContractStatus, ContractStatusChange, Message, Premium, PremiumStatus
from models.messages import Channel, MessageKind
from models.plans import get_plan
from tests.apps import BothApps
from web.deps import AppContext

PLAN = get_plan("de-follow-up")
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2027, 1, 1, tzinfo=UTC)
DUE = date(2026, 3, 2)  # a Monday


def at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def history(*payments: SimPayment, actions: tuple[SimStaffAction, ...] = (), has_email: bool = True) -> ContractHistory:
    return ContractHistory(
        "K-SIM-1",
        premiums=(SimPremium("P-1", DUE, 10_000, "03/2026"),),
        payments=payments,
        actions=actions,
        has_email=has_email,
        plan_id=PLAN.id,
    )


def kinds(outcome: Any) -> list[tuple[str, str]]:
    return [(m.kind.value, m.channel.value) for m in outcome.messages]


# --- hand-built cases -------------------------------------------------------------------------------


def test_an_unpaid_premium_runs_the_plan_with_real_dates_and_suspends_at_the_deadline() -> None:
    outcome = simulate_contract(history(), PLAN, START, datetime(2026, 5, 1, tzinfo=UTC))
    (case,) = outcome.cases
    assert case.case_id == "dunning-K-SIM-1/20260303T050000"  # the morning sweep after the due date
    sent = kinds(outcome)
    assert sent[:3] == [("reminder", "email"), ("qualified_notice", "letter"), ("qualified_notice", "email")]
    notice = next(m for m in outcome.messages if m.kind == MessageKind.QUALIFIED_NOTICE)
    assert notice.fee_cents == 150 and notice.total_cents == 10_150
    (suspension,) = outcome.status_changes
    assert suspension.to_status == ContractStatus.SUSPENDED
    assert suspension.effective_at > notice.at + timedelta(days=14)  # §38 VVG: two weeks from receipt
    assert outcome.suspended_days > 0 and case.closed_at is None


def test_a_partial_payment_gets_a_receipt_and_the_rest_is_dunned_until_paid() -> None:
    partial = SimPayment("pay-1", 4_000, at(DUE + timedelta(days=5)))
    rest = SimPayment("pay-2", 6_150, at(DUE + timedelta(days=40)))
    outcome = simulate_contract(history(partial, rest), PLAN, START, END)
    receipt = next(m for m in outcome.messages if m.kind == MessageKind.PAYMENT_RECEIPT)
    assert receipt.at == partial.received_at and receipt.total_cents == 6_000
    assert outcome.cases[0].closed_at == rest.received_at
    assert outcome.open_cents_at_end == 0 and outcome.paid_cents == 10_150
    assert ("reactivation", "email") in kinds(outcome)  # suspended before the rest came: cover restored
    assert [s.to_status for s in outcome.status_changes] == [ContractStatus.SUSPENDED, ContractStatus.ACTIVE]
    assert outcome.status_changes[1].effective_at == rest.received_at


def test_a_returned_debit_reopens_the_premium_and_a_new_case_duns_it_from_the_return() -> None:
    returned_at = at(DUE + timedelta(days=4), 9)
    debit = SimPayment("sepa:1", 10_000, at(DUE, 7), returned_at=returned_at, return_code="AM04")
    later = SimPayment("pay-3", 10_000, at(DUE + timedelta(days=12)))
    outcome = simulate_contract(history(debit, later), PLAN, START, END)
    (case,) = outcome.cases  # paid on the due date: no case until the debit came back
    assert case.opened_at == returned_at
    assert all(m.at >= returned_at for m in outcome.messages)
    assert kinds(outcome)[0] == ("reminder", "email") and case.closed_at == later.received_at


def test_a_debit_returned_with_md07_stops_the_case_for_a_person() -> None:
    debit = SimPayment("sepa:1", 10_000, at(DUE, 7), returned_at=at(DUE + timedelta(days=20)), return_code="MD07",
                       return_stops_dunning=True)  # fmt: skip
    outcome = simulate_contract(history(debit), PLAN, START, END)
    assert outcome.cases == [] and outcome.messages == []  # nobody may dun a stopped contract


def test_a_hold_keeps_the_case_quiet_until_it_ends_then_dunning_resumes() -> None:
    held_at = at(DUE + timedelta(days=3), 11)  # after the reminder (day 1 after the sweep), before the notice
    hold = SimStaffAction(held_at, "hold", DUE + timedelta(days=40), reason="customer in hospital")
    quiet = simulate_contract(history(actions=(hold,)), PLAN, START, END)
    loud = simulate_contract(history(), PLAN, START, END)
    notice = next(m for m in quiet.messages if m.kind == MessageKind.QUALIFIED_NOTICE)
    usual = next(m for m in loud.messages if m.kind == MessageKind.QUALIFIED_NOTICE)
    assert usual.at < at(DUE + timedelta(days=40), 0) <= notice.at  # held back until the hold ended
    assert not any(held_at < m.at < at(DUE + timedelta(days=40), 0) for m in quiet.messages)


def test_a_hold_the_case_refuses_is_recorded_as_refused_not_applied() -> None:
    too_late = SimStaffAction(at(DUE + timedelta(days=300)), "resume", reason="nothing held")
    outcome = simulate_contract(history(actions=(too_late,)), PLAN, START, END)
    assert outcome.cases[0].refused and "resume" in outcome.cases[0].refused[0]


def test_no_email_address_sends_the_reminder_by_letter() -> None:
    outcome = simulate_contract(history(has_email=False), PLAN, START, datetime(2026, 4, 1, tzinfo=UTC))
    assert kinds(outcome)[0] == ("reminder", "letter")
    assert all(m.channel != Channel.EMAIL for m in outcome.messages)


def test_the_copy_free_driver_and_the_workflows_decide_give_the_same_outcome() -> None:
    partial = SimPayment("pay-1", 4_000, at(DUE + timedelta(days=5)))
    hold = SimStaffAction(at(DUE + timedelta(days=20)), "hold", DUE + timedelta(days=35))
    for h in (history(), history(partial, actions=(hold,))):
        owned = simulate_contract(h, PLAN, START, END)
        copied = simulate_contract(h, PLAN, START, END, copy=True)
        assert owned.messages == copied.messages and owned.status_changes == copied.status_changes
        assert owned.decisions == copied.decisions and owned.fees_cents == copied.fees_cents


def test_a_candidate_plan_with_termination_proposes_it_instead_of_handing_over() -> None:
    outcome = simulate_contract(history(), get_plan("de-follow-up-terminate"), START, END)
    assert outcome.termination_proposals == 1 and outcome.handovers == 0 and outcome.court_cases == 0
    actual = simulate_contract(history(), PLAN, START, END)
    assert actual.handovers == 1 and actual.court_cases == 1 and actual.termination_proposals == 0


# --- the replay check ---------------------------------------------------------------------------------


def _write_through_ledger(engine: Engine, h: ContractHistory) -> None:
    contract = demo_history.Contracted(1, h, PLAN.id, direct_debit=False, name="Erika Mustermann")
    run = ContractRun(h, PLAN, START, END, log=True)
    run.run()
    with session_scope(engine) as session:
        demo_history.write(session, contract, run)


def _slice(engine: Engine, **kw: Any) -> Any:
    part = Slice(start=date(2026, 1, 1), end=date(2027, 1, 1), **kw)
    with session_scope(engine) as session:
        return part, read_slice(session, part, "de-follow-up")


def test_a_hand_built_history_written_into_the_ledger_replays_to_what_it_holds(engine: Engine) -> None:
    debit = SimPayment("sepa:K-SIM-1-P-1", 10_000, at(DUE, 7), returned_at=at(DUE + timedelta(days=4), 9),
                       return_code="AM04")  # fmt: skip
    partial = SimPayment("pay-1", 3_000, at(DUE + timedelta(days=9)))
    rest = SimPayment("pay-2", 7_150, at(DUE + timedelta(days=50)))
    hold = SimStaffAction(at(DUE + timedelta(days=12)), "hold", DUE + timedelta(days=30), reason="on holiday")
    h = replace(history(debit, partial, rest, actions=(hold,)), agent_code=None, subdivision="NW")
    _write_through_ledger(engine, h)
    part, data = _slice(engine)
    (read,) = data.histories
    assert read.payments[0].returned_at == debit.returned_at  # found through the ledger event
    assert [a.kind for a in read.actions] == ["hold"] and read.actions[0].until == hold.until
    (outcome,) = [simulate_contract(read, PLAN, part.start_at, part.end_at)]
    assert replay_defects(data.recorded[0], outcome) == []
    assert {m.kind for m in data.recorded[0].messages} >= {"reminder", "payment_receipt", "qualified_notice"}


def test_the_replay_check_names_what_the_ledger_has_and_the_replay_does_not(engine: Engine) -> None:
    _write_through_ledger(engine, history(SimPayment("pay-2", 10_150, at(DUE + timedelta(days=45)))))
    with session_scope(engine) as session:
        letter = (Message.kind == "qualified_notice") & (Message.channel == "letter")
        notice = session.exec(select(Message).where(letter)).one()
        session.delete(notice)
        change = session.exec(select(ContractStatusChange)).first()
        assert change is not None
        change.effective_at = change.effective_at + timedelta(hours=1)
        session.add(change)
    part, data = _slice(engine)
    report = what_if(data.histories, data.recorded, PLAN, part.start_at, part.end_at)
    assert any("replay sends 1 × qualified_notice by letter" in line for line in report.defects)
    assert any("ledger changed the status to suspended" in line for line in report.defects)


def test_the_demo_history_replays_exactly_and_a_candidate_differs(engine: Engine) -> None:
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    said = demo_history.seed_history(engine, now=now, count=40)
    assert "40 contracts" in said
    with session_scope(engine) as session:
        rows = service.count_rows(session, Message), service.count_rows(session, Premium)
        open_due = session.exec(
            select(func.count()).select_from(Premium).where(Premium.status == PremiumStatus.OPEN)
        ).one()
    assert open_due == 0  # every premium ends paid: nothing for the morning sweep to start
    assert demo_history.seed_history(engine, now=now, count=40) == "demo history: already seeded"
    with session_scope(engine) as session:
        assert (service.count_rows(session, Message), service.count_rows(session, Premium)) == rows
    first, last = demo_history.period(now.date())
    part = Slice(start=first, end=last + timedelta(days=31))
    with session_scope(engine) as session:
        data = read_slice(session, part, "de-follow-up")
    assert len(data.histories) == 40
    report = what_if(data.histories, data.recorded, get_plan("de-follow-up-terminate"), part.start_at, part.end_at)
    assert report.defects == []
    actual = report.actual_totals
    assert actual.cases > 40 and actual.messages > actual.cases and actual.suspensions > 0
    assert report.candidate_totals.termination_proposals > actual.termination_proposals
    assert report.differences and csv_text(report.differences).splitlines()[0].startswith("contract_number,")
    assert totals(report.actual).as_dict() == actual.as_dict()


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(SimulationError, match="must end after it starts"):
        Slice(start=date(2026, 2, 1), end=date(2026, 1, 1)).check()
    with pytest.raises(SimulationError, match="at most 400 days"):
        Slice(start=date(2024, 1, 1), end=date(2026, 1, 1)).check()
    with pytest.raises(SimulationError, match="unknown dunning plan 'nope'"):
        Slice(start=date(2026, 1, 1), end=date(2026, 2, 1), plan_id="nope").check()


# --- the page, the CSV and the API ------------------------------------------------------------------


class NoTemporal:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the simulation must not talk to Temporal (asked for {name})")


@pytest.fixture
def http_app(engine: Engine, settings: Settings) -> BothApps:
    client = cast(Client, NoTemporal())
    return BothApps(AppContext(engine, client, settings, Inbound(engine, client, settings)))


async def test_the_page_csv_and_api_compare_plans_and_refuse_bad_input(engine: Engine, http_app: BothApps) -> None:
    _write_through_ledger(engine, history(SimPayment("pay-2", 10_150, at(DUE + timedelta(days=60)))))
    with session_scope(engine) as session:
        before = service.count_rows(session, Message)
    query = {"candidate": "de-follow-up-terminate", "start": "2026-01-01", "end": "2027-01-01"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=http_app), base_url="http://test") as http:
        form = await http.get("/analytics/simulation")
        assert form.status_code == 200 and 'name="candidate"' in form.text
        shown = await http.get("/analytics/simulation", params=query)
        assert shown.status_code == 200, shown.text
        assert "reproduces what the ledger recorded" in shown.text and "K-SIM-1" in shown.text
        assert "Expected with the response model" in shown.text
        csv = await http.get("/analytics/simulation.csv", params=query)
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[1].startswith("K-SIM-1,")
        api = await http.get("/api/simulation", params=query)
        body = api.json()
        assert api.status_code == 200 and body["replay_defects"] == 0
        assert body["actual"]["handovers"] == 1 and body["candidate"]["termination_proposals"] == 1
        expected = {x["plan"]: x for x in body["response_model"]["expectations"]}
        assert body["response_model"]["cases"] == 1 and set(expected) == {"de-follow-up", "de-follow-up-terminate"}
        assert expected["de-follow-up"]["expected_settled_share"] == 1.0  # its one case was paid after its handover
        bad = await http.get("/api/simulation", params={**query, "candidate": "nope"})
        assert bad.status_code == 422 and "unknown candidate plan 'nope'" in bad.json()["detail"]
        backwards = await http.get("/analytics/simulation", params={**query, "end": "2025-01-01"})
        assert backwards.status_code == 422 and "must end after it starts" in backwards.text
    with session_scope(engine) as session:
        assert service.count_rows(session, Message) == before  # a simulation changes nothing


def test_the_demo_history_fills_the_case_register_as_the_activities_would(engine: Engine) -> None:
    from models.analytics import CaseRecord

    demo_history.seed_history(engine, now=datetime(2026, 11, 30, 12, tzinfo=UTC), count=15)
    with session_scope(engine) as session:
        records = list(session.exec(select(CaseRecord)))
        case_ids = {m.case_id for m in session.exec(select(Message))}
        suspended = {
            s.case_id for s in session.exec(select(ContractStatusChange)) if s.to_status == ContractStatus.SUSPENDED
        }
    assert records and {r.case_id for r in records} == case_ids  # every case that wrote, one row each
    assert all(r.outcome == "paid" and r.closed_at is not None and r.claimed_cents for r in records)
    assert {r.case_id for r in records if r.suspended} == suspended


def test_the_response_model_counts_who_paid_after_which_step_and_chains_it_over_a_plan() -> None:
    from core.response_model import estimate, expect

    def one(number: str, *payments: SimPayment) -> Any:
        return simulate_contract(replace(history(*payments), contract_number=number), PLAN, START, END)

    early = one("A", SimPayment("p", 10_000, at(DUE + timedelta(days=4))))
    late = one("B", SimPayment("p", 10_150, at(DUE + timedelta(days=20))))
    never = one("C")
    model = estimate([early, late, never])
    assert model.cases == 3
    assert model.reached["reminder"] == 3 and model.paid_after["reminder"] == 1  # A paid after the reminder
    assert model.p_after("qualified_notice") == pytest.approx(1 / 2)  # B of B and C
    assert model.p_after("termination") is None
    mine = expect(PLAN, model)
    assert mine.settled_share == pytest.approx(2 / 3)  # A and B paid, C never did
    other = expect(get_plan("de-follow-up-terminate"), model)
    assert "termination" in other.unknown and other.steps[0].p_reach == pytest.approx(1.0)


def test_a_case_the_ledger_saw_start_earlier_starts_then_and_the_sweep_only_joins() -> None:
    started = at(DUE, 12)  # billing's premium_due on the due date itself, before the morning sweep
    h = replace(history(), case_starts=(started,))
    outcome = simulate_contract(h, PLAN, START, datetime(2026, 4, 1, tzinfo=UTC))
    (case,) = outcome.cases
    assert case.opened_at.replace(microsecond=0) == started and case.case_id == "dunning-K-SIM-1/20260302T120000"


def test_a_recorded_write_off_closes_the_case_and_restores_cover_in_the_replay() -> None:
    written = SimStaffAction(at(DUE + timedelta(days=70)), "write-off", reason="uncollectable", by="boss")
    outcome = simulate_contract(history(actions=(written,)), PLAN, START, END)
    (case,) = outcome.cases
    assert case.stage == "written_off" and case.closed_at == written.at
    assert outcome.open_cents_at_end == 0 and outcome.paid_cents == 0
    assert [s.to_status for s in outcome.status_changes] == [ContractStatus.SUSPENDED, ContractStatus.ACTIVE]
