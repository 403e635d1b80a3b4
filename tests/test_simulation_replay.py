"""The replay check against the real workflow (issue #16): a case with a returned debit, a staff
hold and a partial payment runs through DunningCase on the time-skipping server, entering by the
real doors (the ledger API, the contract page's hold form, the inbound payment path); then the
simulation reads the ledger the workflow's activities wrote and replays it with the plan actually
used. It must reproduce every message (kind, channel, day) and every status change (to the second).
"""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import Engine
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from core.simulation import simulate_contract
from core.simulation_report import replay_defects
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from ledger.inbound import Inbound
from ledger.simulation_input import Slice, read_slice
from models.case import CaseStatus
from models.plans import get_plan
from tests.apps import BothApps
from tests.conftest import seed_contract
from tests.helpers import form_post
from web.auth import accounts
from web.deps import AppContext
from workflows.client import case_workflow_id

CONTRACT = "K-REPLAY-1"


async def test_the_real_workflow_and_the_replay_of_its_ledger_agree(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    client = time_env.client
    today = service.ledger_date(await time_env.get_current_time())
    # Due today: the morning sweep (which the simulation assumes at 06:00 the day after the due date)
    # has not run for it, so only the returned debit starts the case, here and in the replay.
    due = today
    seed_contract(engine, CONTRACT, premiums=[("P-1", due, 12_000)])
    inbound = Inbound(engine, client, settings)
    ctx = AppContext(engine, client, settings, inbound)
    system = httpx.AsyncClient(transport=httpx.ASGITransport(app=BothApps(ctx)), base_url="http://test")
    # The debit pays the premium, then comes back (AM04): the premium is open again and a case starts.
    paid = {"type": "payment_received", "event_id": "E-1", "contract_number": CONTRACT, "payment_ref": "sepa-1",
            "amount_cents": 12_000}  # fmt: skip
    assert (await system.post("/api/ledger/events", json=paid)).status_code == 200
    back = {"type": "direct_debit_returned", "event_id": "E-2", "payment_ref": "sepa-1", "reason_code": "AM04"}
    returned = await system.post("/api/ledger/events", json=back)
    assert returned.status_code == 200 and returned.json()["result"]["case"], returned.text
    # A clerk holds the case for a week, through the contract page (the audit trail records it).
    with session_scope(engine) as session:
        password = accounts.add_staff(session, "mia", ["clerk"], "test")
    staff = httpx.AsyncClient(transport=httpx.ASGITransport(app=BothApps(ctx, who="real")), base_url="http://test")
    await form_post(staff, "/sign-in", "/sign-in", {"name": "mia", "password": password})
    page = f"/contracts/{CONTRACT}"
    until = (today + timedelta(days=6)).isoformat()
    held = await form_post(staff, page, f"{page}/case/hold", {"until": until, "reason": "in hospital"})
    assert held.status_code == 303, held.text
    # Ten days on, a partial payment; forty more, the rest (the case has suspended cover by then).
    await time_env.sleep(timedelta(days=10))
    await inbound.payment(
        contract_number=CONTRACT, external_ref="bank-1", amount_cents=5_000, source="bank",
        received_at=await time_env.get_current_time(),
    )  # fmt: skip
    await time_env.sleep(timedelta(days=40))
    now = await time_env.get_current_time()
    with session_scope(engine) as session:
        rest = service.arrears(session, CONTRACT, service.ledger_date(now)).balance_cents
    await inbound.payment(
        contract_number=CONTRACT, external_ref="bank-2", amount_cents=rest, source="bank", received_at=now
    )
    handle: WorkflowHandle[object, CaseStatus] = client.get_workflow_handle(
        case_workflow_id(CONTRACT), result_type=CaseStatus
    )
    closed = await handle.result()
    assert closed.closed and closed.stage == "paid"

    part = Slice(start=due - timedelta(days=1), end=due + timedelta(days=120), contracts=(CONTRACT,))
    with session_scope(engine) as session:
        data = read_slice(session, part, settings.default_plan)
    (history,), (recorded,) = data.histories, data.recorded
    assert [a.kind for a in history.actions] == ["hold"] and history.payments[0].returned_at is not None
    kinds = {m.kind for m in recorded.messages}
    assert {"reminder", "payment_receipt", "qualified_notice", "reactivation"} <= kinds, kinds
    assert [s.to_status for s in recorded.status_changes] == ["suspended", "active"]
    outcome = simulate_contract(history, get_plan(history.plan_id), part.start_at, part.end_at)
    defects = replay_defects(recorded, outcome)
    assert defects == [], "\n".join(defects)
