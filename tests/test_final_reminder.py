"""The plan `de-follow-up-final-reminder`, added by following docs/adding-a-plan.md: a last reminder before
court, 21 days after an unresolved handover, by letter with an e-mail copy; the court application comes
9 days later, as in the German plan. On the time-skipping server, weeks pass in milliseconds."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import Engine
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from channels.render import render_message
from core.calendar import dispatch_moment
from core.steps import CaseStage, StepKind, stage_after
from infra.config import Settings
from models.messages import Channel, Creditor, LineItem, MessageContext, MessageKind
from models.plans import BUILTIN_PLANS
from tests.conftest import seed_contract
from tests.helpers import advance_until, berlin_today, messages, open_case

PLAN = "de-follow-up-final-reminder"


async def test_a_case_on_the_final_reminder_plan_sends_it_21_days_after_the_handover_then_goes_to_court(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    today = berlin_today(await time_env.get_current_time())
    seed_contract(engine, premiums=[("P-1", today, 12_000)])
    handle = await open_case(time_env, settings.task_queue, "K-100001", "P-1", plan_id=PLAN)

    reminded = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.FINAL_REMINDER_SENT)

    assert [s.key for s in reminded.steps_done] == ["reminder", "notice", "suspend", "sms", "agency", "final_reminder"]
    handover, final = reminded.steps_done[-2], reminded.steps_done[-1]
    due = dispatch_moment(handover.at + timedelta(days=21), "Europe/Berlin", "DE")
    assert due <= final.at < due + timedelta(minutes=5)
    assert (final.kind, final.channel, final.copies) == (StepKind.FINAL_REMINDER, Channel.LETTER, [Channel.EMAIL])
    assert final.total_cents == reminded.balance_cents == 12_150  # premium + the notice's 1.50 EUR letter fee

    outbox = messages(engine, "K-100001")
    kinds = [m.kind for m in outbox]
    sent = [(m.channel, m.total_cents) for m in outbox if m.kind == MessageKind.FINAL_REMINDER]
    assert sent == [(Channel.LETTER, 12_150), (Channel.EMAIL, 12_150)]
    assert kinds.index(MessageKind.AGENT_HANDOVER) < kinds.index(MessageKind.FINAL_REMINDER)
    letter = next(m for m in outbox if m.kind == MessageKind.FINAL_REMINDER and m.channel == Channel.LETTER)
    assert "Dies ist unsere letzte Mahnung" in letter.body_text and "Mahnbescheid" in letter.body_text
    assert "121,50\u00a0€" in letter.body_text and letter.pdf

    court = await advance_until(time_env, handle, lambda s: s.stage == CaseStage.COURT_APPROVAL)

    assert [s.key for s in court.steps_done][-2:] == ["final_reminder", "court"]
    assert court.steps_done[-1].at >= dispatch_moment(handover.at + timedelta(days=30), "Europe/Berlin", "DE")
    after = [m.kind for m in messages(engine, "K-100001")]
    assert after.count(MessageKind.FINAL_REMINDER) == 2  # letter and copy, once


def test_the_final_reminder_plan_is_the_german_plan_with_one_step_more() -> None:
    base, plan = BUILTIN_PLANS["de-follow-up"], BUILTIN_PLANS[PLAN]

    assert [s for s in plan.steps if s.key != "final_reminder"] == base.steps
    assert plan.version == 1 and not plan.demo
    assert stage_after(plan.step("final_reminder").kind) == CaseStage.FINAL_REMINDER_SENT


def test_the_final_reminder_renders_as_an_e_mail_naming_the_court_procedure() -> None:
    context = MessageContext(
        kind=MessageKind.FINAL_REMINDER,
        letter_date=date(2026, 11, 30),
        case_id="dunning-K-1/20261130T080000",
        contract_number="K-1",
        salutation_name="Erika Mustermann",
        items=[
            LineItem(label="Beitrag 11/2026", amount_cents=12_000),
            LineItem(label="Mahngebühr", amount_cents=150, kind="fee"),
        ],
        total_cents=12_150,
        pay_url="https://pay.example.org/pay/abc",
        creditor=Creditor(name="Muster Versicherung AG", iban="DE02120300000000202051"),
    )

    email = render_message(Channel.EMAIL, context)

    assert email.subject == "Letzte Mahnung vor dem gerichtlichen Mahnverfahren – Vertrag K-1"
    assert "121,50\u00a0€" in email.text and "https://pay.example.org/pay/abc" in email.text
    assert "§§ 688 ff. ZPO" in email.text and "letzte Mahnung" in email.html
