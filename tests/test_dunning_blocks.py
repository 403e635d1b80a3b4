"""Blocked and cancelled premiums stay out of everything the insurer claims (issue "Legal trust",
item 4), on SQLite and PostgreSQL.

A premium staff cancelled (booked in error) or blocked because the debtor died (MD07) is not
arrears: no notice, SMS, court application, interest claim or write-off counts it, no payment pays
it unless the payer names it, and the costs booked for it go with it. A notice that overstates the
amount is void (BGH VersR 1992, 1501). A contract stopped for MD07 starts or joins no case until a
person releases it; the release brings back what MD07 blocked, never what staff cancelled.

The Temporal client is a recorder here: these tests see what the inbound path *would* start or
signal, without a server (tests/test_dunning_stops_api.py runs the same through the real one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import Engine
from sqlmodel import select
from temporalio.client import Client
from typer.testing import CliRunner

from activities.ledger import LedgerActivities
from activities.messaging import Outbox
from infra import config
from infra.config import Settings
from ledger import audit, service
from ledger.db import session_scope
from ledger.inbound import Inbound
from ledger.interest_claims import claim_default_interest
from models.activities import CloseCase, PrepareCourtApplication, SendMessage
from models.ledger import AgentTask, Contract, CourtApplication, Fee, Message, Premium, PremiumStatus
from models.messages import Channel, MessageKind
from models.plans import BUILTIN_PLANS
from starter import app
from tests.conftest import seed_contract

CONTRACT = "K-1"
OLD_DUE, NEW_DUE = date(2026, 1, 5), date(2026, 2, 5)
CANCELLED_AT = datetime(2026, 1, 20, 9, tzinfo=UTC)
NOTICE_AT = datetime(2026, 2, 19, 9, tzinfo=UTC)
NOTICE_DAY = NOTICE_AT.date()


# --- helpers ---------------------------------------------------------------------------------


@dataclass
class RecordingClient:
    """Stands in for the Temporal client: records each case start/join and each signal."""

    started: list[tuple[str, str]] = field(default_factory=list)  # (workflow id, premium id)
    signals: list[tuple[str, str, Any]] = field(default_factory=list)  # (workflow id, signal, argument)

    async def start_workflow(self, *_: Any, id: str, start_signal_args: list[Any], **__: Any) -> Any:
        self.started.append((id, start_signal_args[0].premium_id))
        return SimpleNamespace(id=id)

    def get_workflow_handle(self, workflow_id: str, **_: Any) -> Any:
        async def signal(handler: Any, argument: Any) -> None:
            self.signals.append((workflow_id, getattr(handler, "__name__", str(handler)), argument))

        return SimpleNamespace(signal=signal)


def inbound(engine: Engine) -> tuple[Inbound, RecordingClient]:
    client = RecordingClient()
    return Inbound(engine, cast(Client, client), Settings(task_queue="test")), client


def book_premium(engine: Engine, premium_id: str, due: date, cents: int, contract: str = CONTRACT) -> None:
    with session_scope(engine) as session:
        service.book_premium(
            session,
            external_id=premium_id,
            contract_number=contract,
            period_start=due,
            period_end=due + timedelta(days=30),
            due_date=due,
            amount_cents=cents,
        )


def book_fee(engine: Engine, key: str, at: datetime, cents: int = 150) -> None:
    with session_scope(engine) as session:
        service.book_fee(
            session,
            key=key,
            contract_number=CONTRACT,
            case_id=f"case:{key}",
            label="Mahnkosten",
            amount_cents=cents,
            at=at,
        )


def pay(engine: Engine, ref: str, cents: int, at: datetime, premium_id: str | None = None) -> Any:
    with session_scope(engine) as session:
        return service.book_payment(
            session,
            contract_number=CONTRACT,
            external_ref=ref,
            amount_cents=cents,
            received_at=at,
            source="bank",
            designated_premium=premium_id,
        )


def cancel_case(engine: Engine, why: str = "Cancelled by mia: premium booked in error") -> list[str]:
    """The case's `cancel` update ends in this activity (workflows/dunning.py → close_case)."""
    closed = LedgerActivities(engine).close_case(
        CloseCase(
            case_id="dunning-K-1/first",
            contract_number=CONTRACT,
            action="cancel",
            reason=why,
            now=CANCELLED_AT,
            as_of=CANCELLED_AT.date(),
        )
    )
    return closed.blocked_premiums


def premium(engine: Engine, premium_id: str) -> Premium:
    with session_scope(engine) as session:
        return service.get_premium(session, premium_id)


def contract(engine: Engine, number: str = CONTRACT) -> Contract:
    with session_scope(engine) as session:
        return service.get_contract(session, number)


def arrears(engine: Engine, as_of: date = NOTICE_DAY) -> Any:
    with session_scope(engine) as session:
        return service.arrears(session, CONTRACT, as_of)


def send_notice(engine: Engine, case_id: str = "dunning-K-1/second") -> Message:
    """The qualified notice (§38 VVG) as the case's notice step sends it: letter, 1.50 fee."""
    sent = Outbox(engine, Settings()).send_message(
        SendMessage(
            case_id=case_id,
            contract_number=CONTRACT,
            key=f"{case_id}:notice",
            kind=MessageKind.QUALIFIED_NOTICE,
            channels=[Channel.LETTER],
            fees_cents={Channel.LETTER: 150},
            now=NOTICE_AT,
            as_of=NOTICE_DAY,
            notice_plan=BUILTIN_PLANS["de-follow-up"],
        )
    )
    with session_scope(engine) as session:
        return session.exec(select(Message).where(Message.id == sent.message_ids[0])).one()


def seed_cancelled_and_new(engine: Engine) -> None:
    """The issue's story: 120.00 cancelled as booked in error, then a new premium of 50.00."""
    seed_contract(engine, CONTRACT, premiums=[("P-OLD", OLD_DUE, 12_000)])
    book_fee(engine, "first-case:reminder", datetime(2026, 1, 12, 9, tzinfo=UTC))  # belongs to P-OLD
    cancel_case(engine)
    book_premium(engine, "P-NEW", NEW_DUE, 5_000)


# --- cancelled premiums: never claimed again -----------------------------------------------------


def test_a_premium_cancelled_as_booked_in_error_stays_out_of_the_next_premiums_qualified_notice(
    any_engine: Engine,
) -> None:
    seed_cancelled_and_new(any_engine)

    notice = send_notice(any_engine)

    assert notice.total_cents == 5_000 + 150  # 51.50, not 171.50 (120.00 + 50.00 + 1.50)
    assert "120,00" not in notice.body_text and "51,50" in notice.body_text
    owed = arrears(any_engine)
    assert [(i.premium_id, i.open_cents) for i in owed.items] == [("P-NEW", 5_000)]
    assert (owed.fees_open_cents, owed.balance_cents) == (150, 5_150)  # the old case's fee went with P-OLD
    cancelled = premium(any_engine, "P-OLD")
    assert cancelled.status == PremiumStatus.OPEN and cancelled.dunning_blocked
    assert cancelled.dunning_block_reason == "Cancelled by mia: premium booked in error"


def test_a_cancelled_premium_is_not_in_the_court_application_nor_in_claimed_interest(any_engine: Engine) -> None:
    seed_cancelled_and_new(any_engine)
    with session_scope(any_engine) as session:
        interest = claim_default_interest(
            session, contract_number=CONTRACT, case_id="c2", key="c2:notice", as_of=NOTICE_DAY, at=NOTICE_AT
        )

    prepared = LedgerActivities(any_engine).prepare_court_application(
        PrepareCourtApplication(case_id="dunning-K-1/second", contract_number=CONTRACT, now=NOTICE_AT)
    )

    with session_scope(any_engine) as session:
        old_id = service.get_premium(session, "P-OLD").id
        record = session.exec(select(CourtApplication)).one().record
    assert all(fee.premium_id != old_id for fee in interest) and interest  # P-NEW's interest only
    claimed = 5_000 + sum(f.amount_cents for f in interest)
    assert prepared.claimed_cents == claimed
    assert [p["premium_id"] for p in cast(list[dict[str, Any]], record["principal"])] == ["P-NEW"]
    assert [i["premium_id"] for i in cast(list[dict[str, Any]], record["interest"])] == ["P-NEW"]
    assert sum(c["amount_cents"] for c in cast(list[dict[str, Any]], record["costs"])) == claimed - 5_000


def test_a_payment_never_silently_pays_a_blocked_premium_the_rest_stays_credit(any_engine: Engine) -> None:
    seed_cancelled_and_new(any_engine)

    result = pay(any_engine, "TX-1", 8_000, NOTICE_AT)

    assert (result.allocated_cents, result.credit_cents, result.balance_cents) == (5_000, 3_000, 0)
    assert premium(any_engine, "P-OLD").paid_cents == 0
    assert premium(any_engine, "P-NEW").status == PremiumStatus.PAID
    assert contract(any_engine).credit_cents == 3_000  # shown to staff, refundable
    book_premium(any_engine, "P-LATER", date(2026, 3, 5), 2_000)  # credit pays a new premium, not P-OLD
    assert premium(any_engine, "P-LATER").status == PremiumStatus.PAID
    assert (premium(any_engine, "P-OLD").paid_cents, contract(any_engine).credit_cents) == (0, 1_000)


def test_a_payment_naming_a_blocked_premium_pays_it_but_not_the_costs_booked_for_it(any_engine: Engine) -> None:
    seed_cancelled_and_new(any_engine)

    result = pay(any_engine, "TX-1", 12_000, NOTICE_AT, premium_id="P-OLD")

    assert (result.allocated_cents, result.credit_cents) == (12_000, 0)
    assert premium(any_engine, "P-OLD").status == PremiumStatus.PAID
    with session_scope(any_engine) as session:
        (old_fee,) = session.exec(select(Fee).where(Fee.idempotency_key == "first-case:reminder")).all()
    assert old_fee.paid_cents == 0
    assert arrears(any_engine).balance_cents == 5_000


def test_a_write_off_leaves_a_blocked_premium_and_its_costs_alone(any_engine: Engine) -> None:
    seed_cancelled_and_new(any_engine)

    with session_scope(any_engine) as session:
        written_off = service.write_off(session, CONTRACT, NOTICE_DAY)

    assert written_off == 5_000
    cancelled = premium(any_engine, "P-OLD")
    assert cancelled.status == PremiumStatus.OPEN and cancelled.dunning_blocked


async def test_a_cancelled_premium_starts_no_case_from_the_sweep_or_an_event(any_engine: Engine) -> None:
    seed_cancelled_and_new(any_engine)
    door, client = inbound(any_engine)

    due_old = await door.premium_due(premium_id="P-OLD")
    due_new = await door.premium_due(premium_id="P-NEW")

    with session_scope(any_engine) as session:
        sweep = [pid for _, _, pid, _ in service.overdue_premiums(session, NOTICE_DAY)]
    assert sweep == ["P-NEW"]
    assert due_old["case"] is None and "Cancelled by mia" in str(due_old["note"])
    assert due_new["case"] == "dunning-K-1"
    assert client.started == [("dunning-K-1", "P-NEW")]


# --- MD07: the contract waits for a person -----------------------------------------------------


def seed_debited(engine: Engine) -> None:
    """P-1 unpaid and overdue; P-2 collected by direct debit (the debit the bank returns)."""
    seed_contract(engine, CONTRACT, premiums=[("P-1", OLD_DUE, 4_000), ("P-2", NEW_DUE, 6_000)])
    pay(engine, "sepa:K-1-2", 6_000, datetime(2026, 2, 5, 9, tzinfo=UTC), premium_id="P-2")


async def test_md07_stops_the_contract_tells_the_running_case_and_a_later_premium_starts_no_case(
    any_engine: Engine,
) -> None:
    seed_debited(any_engine)
    door, client = inbound(any_engine)

    returned = await door.direct_debit_returned(payment_ref="sepa:K-1-2", reason_code="MD07")
    booked_later = await door.premium_booked(
        premium_id="P-3",
        contract_number=CONTRACT,
        period_start=date(2026, 3, 5),
        period_end=date(2026, 4, 4),
        due_date=date(2026, 3, 5),
        amount_cents=6_000,
        today=date(2026, 3, 20),
    )
    due_later = await door.premium_due(premium_id="P-3")

    assert client.started == []  # neither the return nor the later premium started or joined a case
    for answer in (booked_later, due_later):
        assert answer["case"] is None and "stopped" in str(answer["note"]) and "release" in str(answer["note"])
    with session_scope(any_engine) as session:
        assert service.overdue_premiums(session, date(2026, 4, 1)) == []  # nor will the sweep
        (task,) = session.exec(select(AgentTask)).all()
    assert [(wid, name, stop.code) for wid, name, stop in client.signals] == [
        ("dunning-K-1", "dunning_stopped", "MD07")
    ]
    assert returned["reopened"] == ["P-2"] and returned["case"] is None and "MD07" in str(returned["note"])
    assert (task.kind, task.agent_code, task.status) == ("manual_review", "backoffice", "open")
    stopped = contract(any_engine)
    assert (stopped.dunning_stopped_code, stopped.dunning_stopped_at is not None) == ("MD07", True)
    assert [(p, premium(any_engine, p).dunning_block_reason) for p in ("P-1", "P-2")] == [
        ("P-1", "MD07"),
        ("P-2", "MD07"),
    ]
    assert arrears(any_engine, date(2026, 4, 1)).balance_cents == 6_000  # P-3 is owed, shown, not dunned


async def test_release_dunning_brings_back_md07_premiums_but_not_cancelled_ones(any_engine: Engine) -> None:
    seed_contract(any_engine, CONTRACT, premiums=[("P-ERR", OLD_DUE, 12_000)])
    cancel_case(any_engine)
    book_premium(any_engine, "P-2", NEW_DUE, 6_000)
    pay(any_engine, "sepa:K-1-2", 6_000, datetime(2026, 2, 5, 9, tzinfo=UTC), premium_id="P-2")
    door, client = inbound(any_engine)
    await door.direct_debit_returned(payment_ref="sepa:K-1-2", reason_code="MD07")
    assert premium(any_engine, "P-ERR").dunning_block_reason == "Cancelled by mia: premium booked in error"

    with session_scope(any_engine) as session:
        released = service.release_dunning(
            session, CONTRACT, by="mia", reason="heirs confirmed, the estate pays", at=NOTICE_AT
        )

    assert (released.code, released.unblocked) == ("MD07", ["P-2"])
    assert released.still_blocked == {"P-ERR": "Cancelled by mia: premium booked in error"}
    assert contract(any_engine).dunning_stopped_at is None
    assert not premium(any_engine, "P-2").dunning_blocked and premium(any_engine, "P-ERR").dunning_blocked
    with session_scope(any_engine) as session:
        assert [pid for _, _, pid, _ in service.overdue_premiums(session, NOTICE_DAY)] == ["P-2"]
        (task,) = session.exec(select(AgentTask)).all()
    assert (task.status, task.outcome) == ("done", "dunning released by mia: heirs confirmed, the estate pays")
    assert (await door.premium_due(premium_id="P-2"))["case"] == "dunning-K-1"
    assert arrears(any_engine).balance_cents == 6_000


def test_release_uses_credit_the_insurer_already_holds(any_engine: Engine) -> None:
    seed_debited(any_engine)
    with session_scope(any_engine) as session:
        service.reverse_payment(session, "sepa:K-1-2", "MD07")
        service.stop_dunning(session, CONTRACT, code="MD07", reason="debtor deceased", at=NOTICE_AT)
    pay(any_engine, "TX-HEIRS", 10_000, NOTICE_AT)  # nothing dunned is open: all credit
    assert contract(any_engine).credit_cents == 10_000

    with session_scope(any_engine) as session:
        released = service.release_dunning(session, CONTRACT, by="mia", reason="heirs paid", at=NOTICE_AT)

    assert released.credit_used_cents == 10_000
    assert arrears(any_engine).balance_cents == 0 and contract(any_engine).credit_cents == 0


@pytest.mark.parametrize(
    ("number", "by", "reason", "error", "words"),
    [
        ("K-404", "mia", "heirs pay", service.NotFound, ["K-404"]),
        ("K-2", "mia", "heirs pay", service.LedgerError, ["K-2", "not stopped"]),
        (CONTRACT, "mia", "  ", service.LedgerError, ["reason", "empty"]),
        (CONTRACT, "", "heirs pay", service.LedgerError, ["by", "empty"]),
    ],
    ids=["unknown contract", "contract not stopped", "empty reason", "nobody named"],
)
def test_release_refuses_bad_input_and_changes_nothing(
    any_engine: Engine, number: str, by: str, reason: str, error: type[Exception], words: list[str]
) -> None:
    seed_debited(any_engine)
    seed_contract(any_engine, "K-2")
    with session_scope(any_engine) as session:
        service.reverse_payment(session, "sepa:K-1-2", "MD07")
        service.stop_dunning(session, CONTRACT, code="MD07", reason="debtor deceased", at=NOTICE_AT)

    with pytest.raises(error) as refused, session_scope(any_engine) as session:
        service.release_dunning(session, number, by=by, reason=reason, at=NOTICE_AT)

    assert all(word in str(refused.value) for word in words), refused.value
    assert contract(any_engine).dunning_stopped_code == "MD07"
    assert [premium(any_engine, p).dunning_block_reason for p in ("P-1", "P-2")] == ["MD07", "MD07"]


# --- the other return codes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "task_kind"),
    [
        ("AC01", "bank_details_request"),
        ("AC04", "bank_details_request"),
        ("AC06", "bank_details_request"),
        ("MD01", "mandate_request"),
    ],
)
async def test_an_unusable_account_or_mandate_switches_to_self_payment_asks_once_and_duns(
    any_engine: Engine, code: str, task_kind: str
) -> None:
    seed_debited(any_engine)
    with session_scope(any_engine) as session:
        service.get_contract(session, CONTRACT).payment_method = "direct_debit"
    door, client = inbound(any_engine)

    first = await door.direct_debit_returned(payment_ref="sepa:K-1-2", reason_code=code)
    again = await door.direct_debit_returned(payment_ref="sepa:K-1-2", reason_code=code)

    assert contract(any_engine).payment_method == "self_payment"
    with session_scope(any_engine) as session:
        (task,) = session.exec(select(AgentTask)).all()
    assert (task.kind, task.agent_code, task.status, task.open_cents) == (task_kind, "backoffice", "open", 6_000)
    assert first["case"] == "dunning-K-1" and client.started == [("dunning-K-1", "P-2")]
    assert any(task_kind in action for action in cast(list[str], first["actions"]))
    assert any("self-payment" in action for action in cast(list[str], first["actions"]))
    assert again["changed"] is False and again["actions"] == []
    assert contract(any_engine).dunning_stopped_at is None and not premium(any_engine, "P-2").dunning_blocked


# --- the CLI ---------------------------------------------------------------------------------------


def test_release_from_the_cli_says_what_is_dunned_again_and_refuses_what_it_cannot_release(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_debited(engine)
    with session_scope(engine) as session:
        service.reverse_payment(session, "sepa:K-1-2", "MD07")
        service.stop_dunning(session, CONTRACT, code="MD07", reason="debtor deceased", at=NOTICE_AT)
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("CLI_IDENTITY", "mia@backoffice")
    config.get_settings.cache_clear()
    runner = CliRunner()
    try:
        no_reason = runner.invoke(app, ["release-dunning", CONTRACT])
        released = runner.invoke(app, ["release-dunning", CONTRACT, "--reason", "heirs pay"])
        twice = runner.invoke(app, ["release-dunning", CONTRACT, "--reason", "heirs pay"])
    finally:
        config.get_settings.cache_clear()

    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    assert released.exit_code == 0, released.output
    assert "MD07 stop released" in released.output and "P-1, P-2" in released.output
    assert twice.exit_code == 2 and "not stopped" in twice.output
    assert contract(engine).dunning_stopped_at is None
    with session_scope(engine) as session:  # the CLI's configured identity, not a typed name
        trail = audit.for_contract(session, CONTRACT)
    assert [(e.actor_kind, e.actor, e.action) for e in trail] == [
        ("cli", "mia@backoffice", "starter.py release-dunning")
    ]
