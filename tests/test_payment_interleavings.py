"""Property (issue #11): for any interleaving of payments, sends and retries, the contract is active
as soon as the ledger balance reaches zero — never only when the sends the case was busy with are
done — and every payment is answered truthfully, once.

Hypothesis draws the interleavings (how the balance is split, which receipt is held back in the
activity while the next payment arrives, which send fails once and is retried); each is played on
the time-skipping server with the real worker, ledger and outbox. The scenarios are drawn up front
(derandomized, so every run plays the same ones) because the server lives in the test's event loop.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.messaging import Outbox
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.activities import SendMessage, SentMessage
from models.case import CaseStage
from models.messages import MessageKind
from tests.conftest import seed_contract, terminate_cases
from tests.helpers import advance_until, berlin_today, contract_status, messages, open_case, status

PREMIUM = 12_000
BALANCE = PREMIUM + 150  # the premium and the notice's letter fee, once the case is suspended


@dataclass(frozen=True)
class Payment:
    cents: int
    hold_its_receipt: bool  # its receipt is stuck in the activity until the case has seen the next payment
    first_send_fails: bool  # its receipt's first attempt fails (provider 5xx): Temporal retries it


@st.composite
def interleavings(draw: st.DrawFn) -> list[Payment]:
    cuts = sorted(draw(st.sets(st.integers(min_value=1, max_value=BALANCE - 1), max_size=3)))
    parts = [b - a for a, b in zip([0, *cuts], [*cuts, BALANCE], strict=True)]
    return [Payment(cents, draw(st.booleans()), draw(st.booleans())) for cents in parts]


SCENARIOS: list[list[Payment]] = []


@settings(max_examples=8, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(interleavings())
def _collect(scenario: list[Payment]) -> None:
    SCENARIOS.append(scenario)


_collect()


class Sends:
    """Steers the outbox activity per receipt: hold it back, or fail its first attempt."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.plan: dict[str, Payment] = {}
        self.gates: dict[str, threading.Event] = {}
        self.entered: dict[str, threading.Event] = {}
        self.failed: set[str] = set()
        original = Outbox._send

        def steered(outbox: Outbox, request: SendMessage) -> SentMessage:
            ref = request.key.rsplit(":receipt:", 1)[-1] if request.kind == MessageKind.PAYMENT_RECEIPT else ""
            payment = self.plan.get(ref)
            if payment is not None and payment.first_send_fails and ref not in self.failed:
                self.failed.add(ref)
                raise ApplicationError("provider answered 503", type="ProviderUnavailable")
            if payment is not None and payment.hold_its_receipt:
                self.entered[ref].set()
                self.gates[ref].wait(timeout=120)
            return original(outbox, request)

        monkeypatch.setattr(Outbox, "_send", steered)

    def expect(self, ref: str, payment: Payment) -> None:
        self.plan[ref] = payment
        self.gates[ref], self.entered[ref] = threading.Event(), threading.Event()

    def release_all(self) -> None:
        for gate in self.gates.values():
            gate.set()


async def eventually(check: object, what: str, seconds: float = 60.0) -> None:
    assert callable(check)
    for _ in range(int(seconds * 10)):
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"never within {seconds} s: {what}")


def ledger_balance(engine: Engine, contract: str, env_now: object) -> int:
    with session_scope(engine) as session:
        return service.arrears(session, contract, berlin_today(env_now)).balance_cents  # type: ignore[arg-type]


async def test_for_any_interleaving_cover_is_back_as_soon_as_the_balance_is_zero(
    time_env: WorkflowEnvironment,
    worker: Worker,
    engine: Engine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert len(SCENARIOS) == 8 and any(len(s) > 2 for s in SCENARIOS)
    sends = Sends(monkeypatch)
    inbound = Inbound(engine, time_env.client, settings)
    for number, scenario in enumerate(SCENARIOS):
        contract = f"K-IL-{number}"
        today = berlin_today(await time_env.get_current_time())
        seed_contract(engine, contract, email=None, premiums=[(f"P-IL-{number}", today, PREMIUM)])
        handle = await open_case(time_env, settings.task_queue, contract, f"P-IL-{number}")
        await advance_until(time_env, handle, lambda s: s.stage == CaseStage.SUSPENDED)
        assert (await status(handle)).balance_cents == BALANCE

        stuck = False  # a receipt is held: later receipts queue behind it in the case
        for index, payment in enumerate(scenario):
            ref = f"il-{number}-{index}"
            sends.expect(f"testpay:{ref}", payment)
            await inbound.payment(
                contract_number=contract,
                external_ref=f"testpay:{ref}",
                amount_cents=payment.cents,
                source="testpay",
                received_at=await time_env.get_current_time(),
            )
            last = index == len(scenario) - 1
            if payment.hold_its_receipt and not last and not stuck:
                # The next payment arrives while this receipt is still being sent.
                assert await asyncio.to_thread(sends.entered[f"testpay:{ref}"].wait, 60), scenario
                stuck = True
        # The balance is zero in the ledger: cover is back while held receipts are still stuck.
        assert ledger_balance(engine, contract, await time_env.get_current_time()) == 0
        await eventually(lambda c=contract: contract_status(engine, c) == "active", f"{contract} active, {scenario}")
        sends.release_all()
        result = await handle.result()

        assert result.stage == CaseStage.PAID, scenario
        kinds = [m.kind for m in messages(engine, contract)]
        assert kinds.count("reactivation") == 1 and "paid_in_full" not in kinds, (scenario, kinds)
        receipts = [m for m in messages(engine, contract) if m.kind == "payment_receipt"]
        keys = [m.idempotency_key for m in receipts]
        assert len(keys) == len(set(keys)) and len(receipts) <= len(scenario) - 1, (scenario, keys)
        for receipt in receipts:  # each receipt names its own payment's amount
            ref = receipt.idempotency_key.split(":receipt:")[1].rsplit(":", 1)[0]
            cents = next(p.cents for i, p in enumerate(scenario) if f"testpay:il-{number}-{i}" == ref)
            euros = f"{cents // 100:,}".replace(",", ".") + f",{cents % 100:02d}"
            assert f"Zahlung von {euros}" in " ".join(receipt.body_text.split()), (ref, receipt.body_text[:200])
        assert [s.key for s in result.steps_done] == ["reminder", "notice", "suspend"], scenario
    await terminate_cases(time_env.client, engine)
    await time_env.sleep(timedelta(seconds=1))
