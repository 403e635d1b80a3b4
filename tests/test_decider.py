"""The case's rules without Temporal: worked examples of `decide` (one event in, the new case and
the commands out), and properties over random interleavings of payments, premiums joining, holds,
promises, returned debits, stops and failed steps (tests/case_simulation.py drives the decider
against an in-memory ledger as the workflow drives it against the real one)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.case import commands as c
from core.case import events as e
from core.case.decider import (
    PAYMENTS_REREAD_LEDGER,
    Case,
    Decision,
    decide,
    open_case,
    payment_outcome,
)
from core.case.refusals import refusal
from core.schedule import is_supplement
from models.activities import SentMessage
from models.case import (
    Arrears,
    CaseInput,
    CaseStage,
    EscalateNow,
    Hold,
    HoldKind,
    HoldRequest,
    OpenItem,
    PaymentBooked,
    PremiumOverdue,
    RecordPayment,
    Resume,
    StepRecord,
)
from models.ledger import ContractStatus
from models.messages import Channel, MessageKind
from models.plan import DunningPlan, StepKind
from models.plans import get_plan
from tests.case_simulation import START, Action, Simulation

PLAN = get_plan("de-follow-up")
MONDAY = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)  # 08:00 in Berlin


def arrears(cents: int, status: ContractStatus = ContractStatus.ACTIVE) -> Arrears:
    items = [OpenItem(premium_id="P-1", period="2026-03", due_date=date(2026, 3, 2), open_cents=cents)] if cents else []
    return Arrears(contract_number="K-1", items=items, balance_cents=cents, contract_status=status)


def new_case() -> Case:
    case_input = CaseInput(contract_number="K-1", plan=PLAN, premiums=[PremiumOverdue(premium_id="P-1")])
    return open_case(case_input, "dunning-K-1", MONDAY)


# Commands whose answer the case acts on; the others (publish, lock, children, …) answer None.
ANSWERED = (c.ReadArrears, c.Send, c.ChangeStatus, c.PrepareCourt, c.RecordStaffPayment, c.Sleep)


def run(case: Case, event: e.Event, now: datetime = MONDAY, answers: dict[type, object] | None = None) -> Decision:
    """`event`, then every command answered from `answers` (by command type) until nothing is left;
    the commands performed are collected in order, depth first, as the workflow performs them."""
    answers = answers or {}
    performed: list[c.Command] = []

    def perform(commands: list[c.Command]) -> None:
        nonlocal case
        for command in commands:
            performed.append(command)
            if isinstance(command, ANSWERED) and type(command) not in answers:
                continue  # the example ends here: the command is still running (or the loop sleeps)
            result = answers.get(type(command))
            decision = decide(case, e.Done(command, result), now)
            case = decision.case
            perform(decision.commands)

    first = decide(case, event, now)
    case = first.case
    perform(first.commands)
    return Decision(case, performed)


def kinds(commands: list[c.Command]) -> list[str]:
    return [type(command).__name__ for command in commands if not isinstance(command, c.Publish | c.Continue)]


def at_reminder() -> Case:
    """A case that has read its arrears (120 EUR open) and waits for the reminder."""
    case = run(new_case(), e.Turn(), answers={c.ReadArrears: arrears(12_000)}).case
    assert not case.needs_refresh and case.state.arrears.balance_cents == 12_000
    return case


def suspended() -> Case:
    case = at_reminder()
    state = case.state
    for step in PLAN.steps[:3]:
        state.steps_done.append(StepRecord(key=step.key, kind=step.kind, at=MONDAY, total_cents=12_150))
    state.next_step, state.stage = 3, CaseStage.SUSPENDED
    state.deadline = MONDAY + timedelta(days=17)
    state.noticed_items = ["P-1"]
    state.arrears = arrears(12_150, ContractStatus.SUSPENDED)
    return case


# --- worked examples ------------------------------------------------------------------------------


def test_a_new_case_reads_the_ledger_first_then_sleeps_until_the_reminder_is_due() -> None:
    decision = run(new_case(), e.Turn(), answers={c.ReadArrears: arrears(12_000)})

    assert kinds(decision.commands) == ["WithLock", "ReadArrears"]
    case = decision.case
    then = decide(case, e.Turn(), MONDAY).commands
    assert len(then) == 1 and isinstance(then[0], c.Sleep)
    sleep = then[0]
    assert sleep.step is not None and sleep.step.key == "reminder"
    assert sleep.until is not None and sleep.until > MONDAY  # the plan's offset from the due date


def test_deciding_never_changes_the_case_it_was_given() -> None:
    case = at_reminder()
    before = case.model_dump()

    decide(case, e.PaymentReceived(PaymentBooked(payment_ref="bank:1", amount_cents=500)), MONDAY)
    decide(case, e.Turn(), MONDAY)

    assert case.model_dump() == before


def test_the_reminder_runs_once_with_the_step_key_and_moves_the_pointer_on_by_one() -> None:
    case = at_reminder()
    step = PLAN.steps[0]
    later = MONDAY + timedelta(days=10)
    sent = SentMessage(channel=Channel.EMAIL, message_ids=[7], total_cents=12_000)

    decision = run(
        case,
        e.Done(c.Sleep(later, step, "", then=c.Woken(step)), True),
        later,
        answers={c.ReadArrears: arrears(12_000), c.Send: sent},
    )

    assert kinds(decision.commands) == ["WithLock", "ReadArrears", "Send", "Checkpoint"]
    send = next(command for command in decision.commands if isinstance(command, c.Send))
    assert send.request.key == f"{case.state.case_id}:reminder"
    assert send.request.kind == MessageKind.REMINDER and send.request.notice_plan is None
    state = decision.case.state
    assert state.next_step == 1 and state.stage == CaseStage.REMINDED
    assert [(r.key, r.total_cents, r.message_ids) for r in state.steps_done] == [("reminder", 12_000, [7])]


def test_the_notice_carries_the_plan_so_its_deadline_is_computed_and_then_governs() -> None:
    case = at_reminder()
    case.state.next_step = 1
    notice = PLAN.steps[1]
    deadline = MONDAY + timedelta(days=17)
    sent = SentMessage(channel=Channel.LETTER, total_cents=12_150, fee_cents=150, deadline=deadline)

    decision = run(
        case, e.Done(c.WithLock(then=c.StepDue(notice))), answers={c.ReadArrears: arrears(12_000), c.Send: sent}
    )

    send = next(command for command in decision.commands if isinstance(command, c.Send))
    assert send.request.kind == MessageKind.QUALIFIED_NOTICE and send.request.notice_plan == PLAN
    state = decision.case.state
    assert state.deadline == deadline and state.noticed_items == ["P-1"] and state.stage == CaseStage.NOTICE_SENT


def test_nothing_is_sent_when_the_read_before_the_step_finds_the_balance_paid() -> None:
    case = at_reminder()
    decision = run(case, e.Done(c.WithLock(then=c.StepDue(PLAN.steps[0]))), answers={c.ReadArrears: arrears(0)})

    assert kinds(decision.commands) == ["ReadArrears"]
    assert decision.case.state.next_step == 0 and decision.case.state.steps_done == []


def test_a_send_that_finds_nothing_open_records_no_step_and_the_case_settles() -> None:
    case = at_reminder()
    skipped = SentMessage(channel=Channel.EMAIL, total_cents=0, skipped=True)
    decision = run(
        case,
        e.Done(c.WithLock(then=c.StepDue(PLAN.steps[0]))),
        answers={c.ReadArrears: arrears(12_000), c.Send: skipped},
    )

    assert decision.case.state.steps_done == [] and decision.case.state.next_step == 0
    assert decision.case.needs_refresh  # the next turn reads the ledger and settles


def test_a_partial_payment_gets_a_receipt_keyed_by_its_reference() -> None:
    case = at_reminder()
    case = decide(case, e.PaymentReceived(PaymentBooked(payment_ref="bank:1", amount_cents=5_000)), MONDAY).case
    receipt = SentMessage(channel=Channel.EMAIL, total_cents=7_000)

    decision = run(case, e.Turn(), answers={c.ReadArrears: arrears(7_000), c.Send: receipt})

    assert kinds(decision.commands) == ["WithLock", "ReadArrears", "Send"]
    send = next(command for command in decision.commands if isinstance(command, c.Send))
    assert send.request.key == f"{case.state.case_id}:receipt:bank:1"
    assert send.request.kind == MessageKind.PAYMENT_RECEIPT and send.request.paid_cents == 5_000
    assert decision.case.pending_payments == [] and decision.case.state.receipts_sent == 1


def test_the_same_payment_signalled_twice_changes_nothing_the_second_time() -> None:
    payment = e.PaymentReceived(PaymentBooked(payment_ref="bank:1", amount_cents=5_000))
    once = decide(at_reminder(), payment, MONDAY).case
    twice = decide(once, payment, MONDAY).case

    assert twice.model_dump() == once.model_dump()
    assert len(twice.pending_payments) == 1 and twice.changes == once.changes


def test_a_cleared_balance_restores_cover_effective_when_the_money_came_confirms_and_closes() -> None:
    case = suspended()
    received = MONDAY + timedelta(days=20)
    later = received + timedelta(hours=5)  # a worker got to it late
    payment = PaymentBooked(payment_ref="bank:9", amount_cents=12_150, received_at=received)
    case = decide(case, e.PaymentReceived(payment), later).case
    case = run(case, e.Turn(), later, answers={c.ReadArrears: arrears(0, ContractStatus.SUSPENDED)}).case
    assert case.clearing == [payment]

    decision = run(
        case, e.Turn(), later, answers={c.ChangeStatus: True, c.Send: SentMessage(channel=Channel.EMAIL, total_cents=0)}
    )

    assert kinds(decision.commands) == ["WithLock", "ChangeStatus", "Send", "CloseInLedger"]
    change = decision.commands[1]
    assert isinstance(change, c.ChangeStatus)
    assert change.request.to_status == ContractStatus.ACTIVE and change.request.effective_at == received
    assert change.request.key == f"{case.state.case_id}:reactivate"
    confirmation = next(command for command in decision.commands if isinstance(command, c.Send))
    assert confirmation.request.kind == MessageKind.REACTIVATION and confirmation.request.paid_cents == 12_150
    assert decision.case.closed and decision.case.state.stage == CaseStage.PAID
    assert decision.case.state.reactivated_at == received


def test_a_payment_during_a_send_restores_cover_at_once() -> None:
    case = suspended()
    payment = PaymentBooked(payment_ref="bank:9", amount_cents=12_150, received_at=MONDAY)
    case = decide(case, e.PaymentReceived(payment), MONDAY).case

    decision = run(
        case, e.PaymentsWhileBusy(), answers={c.ReadArrears: arrears(0, ContractStatus.SUSPENDED), c.ChangeStatus: True}
    )

    assert kinds(decision.commands) == ["ReadArrears", "ChangeStatus"]
    assert decision.case.state.arrears.contract_status == ContractStatus.ACTIVE
    assert not decision.case.closed  # the send goes on; the loop settles and confirms after it


def test_a_payment_has_no_outcome_until_read_and_a_clearing_one_none_until_cover_is_back() -> None:
    """The answer a payer waits for (update `payment_outcome`): never before the case has read the
    ledger after the payment, and for a clearing payment never before cover is restored."""
    case = suspended()
    payment = PaymentBooked(payment_ref="bank:9", amount_cents=12_150, received_at=MONDAY)
    case = decide(case, e.PaymentReceived(payment), MONDAY).case
    assert payment_outcome(case, "bank:9") is None  # signalled, not yet read

    read = run(case, e.Turn(), answers={c.ReadArrears: arrears(0, ContractStatus.SUSPENDED)}).case
    assert read.state.arrears.balance_cents == 0
    assert payment_outcome(read, "bank:9") is None  # cleared, cover not yet restored

    closed = run(
        read, e.Turn(), answers={c.ChangeStatus: True, c.Send: SentMessage(channel=Channel.EMAIL, total_cents=0)}
    ).case
    outcome = payment_outcome(closed, "bank:9")
    assert outcome is not None and outcome.cover_restored and outcome.contract_status == ContractStatus.ACTIVE
    assert outcome.balance_cents == 0 and outcome.closed and not outcome.on_hold


def test_a_partial_payment_answers_with_the_balance_left_and_cover_still_suspended() -> None:
    case = suspended()
    case = decide(case, e.PaymentReceived(PaymentBooked(payment_ref="bank:1", amount_cents=5_000)), MONDAY).case
    receipt = SentMessage(channel=Channel.EMAIL, total_cents=7_150)
    case = run(case, e.Turn(), answers={c.ReadArrears: arrears(7_150, ContractStatus.SUSPENDED), c.Send: receipt}).case

    outcome = payment_outcome(case, "bank:1")
    assert outcome is not None and not outcome.cover_restored
    assert outcome.balance_cents == 7_150 and outcome.contract_status == ContractStatus.SUSPENDED


def test_a_cleared_balance_on_a_stopped_case_answers_at_once_a_person_decides() -> None:
    case = suspended()
    case.state.hold = Hold(kind=HoldKind.STOPPED, reason="MD07")
    case = decide(case, e.PaymentReceived(PaymentBooked(payment_ref="bank:2", amount_cents=12_150)), MONDAY).case
    case = run(case, e.Turn(), answers={c.ReadArrears: arrears(0, ContractStatus.SUSPENDED)}).case

    outcome = payment_outcome(case, "bank:2")
    assert outcome is not None and outcome.on_hold and not outcome.cover_restored
    assert outcome.contract_status == ContractStatus.SUSPENDED  # no automatic reactivation while stopped


def test_a_case_from_before_the_payment_watch_does_not_read_during_a_send() -> None:
    decision = decide(
        suspended(), e.PaymentsWhileBusy(), MONDAY, versions=lambda change: change != PAYMENTS_REREAD_LEDGER
    )
    assert decision.commands == []


def test_a_failed_step_holds_for_a_person_and_resume_retries_the_same_step_key() -> None:
    case = at_reminder()
    step = PLAN.steps[0]
    send = run(case, e.Done(c.WithLock(then=c.StepDue(step))), answers={c.ReadArrears: arrears(12_000)}).commands[-1]
    assert isinstance(send, c.Send)

    held = decide(case, e.Failed(send, "no such contract"), MONDAY).case
    assert held.state.hold is not None and held.state.hold.kind == HoldKind.ATTENTION
    assert held.state.next_step == 0 and held.state.steps_done == []

    resumed = decide(held, e.Resumed(Resume(reason="master data fixed")), MONDAY).case
    retry = run(resumed, e.Done(c.WithLock(then=c.StepDue(step))), answers={c.ReadArrears: arrears(12_000)}).commands[
        -1
    ]
    assert isinstance(retry, c.Send) and retry.request.key == send.request.key


def test_a_broken_promise_resumes_dunning_and_a_kept_one_does_not_escalate() -> None:
    case = at_reminder()
    promised = decide(case, e.Promised(e.PromiseToPay(pay_by=date(2026, 3, 9), amount_cents=6_000)), MONDAY).case
    hold = promised.state.hold
    assert hold is not None and hold.until is not None

    broken = run(promised, e.Done(c.Sleep(hold.until, None, "", then=c.Woken(None)), True), hold.until)
    assert broken.case.state.hold is None
    assert "Promise to pay broken (0 of 6000 cents paid)" in broken.case.state.journal[-1].text


def test_a_hold_until_a_date_stops_the_step_until_then() -> None:
    case = decide(
        at_reminder(), e.HoldRequested(HoldRequest(until=date(2026, 4, 1), reason="in hospital")), MONDAY
    ).case
    [sleep] = decide(case, e.Turn(), MONDAY).commands

    assert isinstance(sleep, c.Sleep) and sleep.until == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)  # 1 April, Berlin
    assert sleep.summary.startswith("hold ends")


def test_refusals_name_the_rule_and_accept_what_is_fine() -> None:
    case = at_reminder()
    assert refusal(case, e.HoldRequested(HoldRequest(until=date(2026, 3, 1), reason="x")), MONDAY) == (
        "until must be after today (2026-03-02), got 2026-03-01"
    )
    assert refusal(case, e.Resumed(Resume()), MONDAY) == (
        "case is not on hold, disputed or waiting for attention; nothing to resume"
    )
    assert refusal(case, e.PaymentRecorded(RecordPayment(amount_cents=0, reference="r")), MONDAY) == (
        "amount_cents must be between 1 and 100000000, got 0"
    )
    assert refusal(case, e.EscalationRequested(EscalateNow(reason="now")), MONDAY) is None


def test_escalation_cannot_jump_over_the_notice_deadline() -> None:
    case = suspended()
    case.state.next_step, case.state.steps_done = 2, case.state.steps_done[:2]  # suspension is next
    assert refusal(case, e.EscalationRequested(EscalateNow(reason="now")), MONDAY) == (
        "step suspend needs the notice deadline 2026-03-19 07:00 UTC to pass first"
    )


def test_a_returned_debit_makes_the_case_read_the_ledger_again_and_a_new_premium_is_noted() -> None:
    case = at_reminder()
    returned = PremiumOverdue(premium_id="P-1", reason="direct_debit_returned")
    rejoined = decide(case, e.PremiumJoined(returned), MONDAY)

    assert rejoined.case.needs_refresh and rejoined.commands == []
    assert rejoined.case.changes == case.changes + 1  # the sleeping loop wakes
    another = PremiumOverdue(premium_id="P-2", reason="direct_debit_returned")
    joined = decide(rejoined.case, e.PremiumJoined(another), MONDAY).case
    assert joined.state.journal[-1].text == "Premium P-2 joined: direct_debit_returned"
    assert [c.__class__.__name__ for c in decide(joined, e.Turn(), MONDAY).commands] == ["WithLock"]


# --- properties over random interleavings ---------------------------------------------------------

ACTION_KINDS = [
    "pay",
    "pay",
    "pay_all",
    "join",
    "return_debit",
    "hold",
    "resume",
    "promise",
    "escalate",
    "fail_next_step",
]
actions = st.lists(
    st.builds(
        Action,
        kind=st.sampled_from([*ACTION_KINDS, "stop"]),
        after=st.integers(min_value=0, max_value=50 * 24).map(lambda hours: timedelta(hours=hours)),
        fraction=st.floats(min_value=0.05, max_value=0.95),
        during_send=st.booleans(),
        send_first=st.booleans(),
    ),
    max_size=14,
)
plans = st.sampled_from(["de-follow-up", "dk-follow-up", "de-first-premium"]).map(get_plan)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans, script=actions)
def test_no_plan_step_is_skipped_or_repeated(plan: DunningPlan, script: list[Action]) -> None:
    simulation = Simulation(plan, list(script))
    case = simulation.run()

    done = [r.key for r in case.state.steps_done if not is_supplement_key(r.key)]
    assert done == [step.key for step in case.state.plan.steps[: len(done)]]  # in order, none left out
    assert case.state.next_step == len(done)  # the pointer moved once per step done
    assert simulation.problems == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans, script=actions)
def test_cover_is_active_whenever_the_balance_is_zero(plan: DunningPlan, script: list[Action]) -> None:
    simulation = Simulation(plan, list(script))
    case = simulation.run()

    assert [p for p in simulation.problems if "cover" in p] == []
    if case.state.stage == CaseStage.PAID:
        assert simulation.ledger.status == ContractStatus.ACTIVE and simulation.ledger.closed_as == "paid"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans, script=actions)
def test_every_notice_states_the_arrears_it_was_decided_on(plan: DunningPlan, script: list[Action]) -> None:
    simulation = Simulation(plan, list(script))
    case = simulation.run()

    demands = {r.key: r for r in case.state.steps_done if r.kind in (StepKind.REMINDER, StepKind.QUALIFIED_NOTICE)}
    for key, record in demands.items():
        stored = simulation.ledger.messages[f"{case.state.case_id}:{key}"]
        assert record.total_cents == stored.total_cents > 0  # never a demand for nothing
        if not stored.money_moved:  # nothing paid or joined between the case's read and the send
            assert stored.total_cents == stored.balance_decided_cents + stored.fee_cents


def test_a_payment_that_clears_the_balance_during_a_send_restores_cover_before_the_send_ends() -> None:
    # Reminder, notice, suspension; then a payment in full arrives while the SMS is being sent.
    script = [Action("pay_all", during_send=True, during_step="sms", send_first=True)]
    simulation = Simulation(get_plan("de-follow-up"), script)
    case = simulation.run()

    assert f"{case.state.case_id}:suspend" in simulation.ledger.status_keys  # cover was suspended
    assert simulation.cover_checks == 1 and simulation.problems == []
    assert case.state.stage == CaseStage.PAID and simulation.ledger.status == ContractStatus.ACTIVE
    assert simulation.now > START


def is_supplement_key(key: str) -> bool:
    return is_supplement(PLAN.steps[0].model_copy(update={"key": key}))
