"""Collections analytics (issue #16, docs/analytics.md): every figure on the small hand-built ledger
of tests/analytics_ledger.py, with the numbers worked out by hand here; the case register written by
the case's activities; the JSON API, the staff page and `starter.py report`.

Ledger tests run on SQLite and, with TEST_DATABASE_URL, on PostgreSQL (tests/conftest.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from sqlalchemy import Engine, func
from sqlmodel import select
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from typer.testing import CliRunner

from activities.ledger import LedgerActivities
from infra import config
from infra.config import Settings
from ledger import analytics, service
from ledger.analytics import Filters
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.activities import CloseCase, LoadArrears
from models.analytics import CaseRecord
from models.case import CaseStage
from models.ledger import ContractStatus
from tests.analytics_ledger import AS_OF, NOW, P, Q, build
from tests.apps import BothApps
from tests.helpers import advance_until
from tests.test_dunning_case import one_premium_case, pay
from web.deps import AppContext
from workflows.dunning import DunningCase

D = Decimal


def report(engine: Engine, cost: int = 25_000, window: int = 7, **filters: Any) -> analytics.Report:
    with session_scope(engine) as session:
        return analytics.report(
            session,
            Filters(as_of=filters.pop("as_of", AS_OF), **filters),
            acquisition_cost_cents=cost,
            default_plan=P,
            cure_window_days=window,
            now=NOW,
        )


@pytest.fixture
def ledger(any_engine: Engine) -> Engine:
    build(any_engine)
    return any_engine


# --- every figure, worked by hand -----------------------------------------------------------------


def test_totals_count_the_register_rows(ledger: Engine) -> None:
    t = report(ledger).totals
    # c1…c7; c5 is the only one still open; c1, c2, c4, c7 paid; c3 written off; c6 cancelled
    assert (t.cases, t.open, t.paid, t.written_off, t.cancelled) == (7, 1, 4, 1, 1)
    # claims known at opening: 10,000 + 20,000 + 5,000 + 8,000 + 3,000 + 4,000 (c7: before the register)
    assert t.claimed_cents == 50_000


def test_recovery_curve_by_cohort(ledger: Engine) -> None:
    rows = {r.cohort: r for r in report(ledger).recovery}
    # c6 (cancelled: booked in error) and c7 (claim unknown) are no recovery's base
    assert sorted(rows) == ["2026-01", "2026-02", "2026-11"]
    jan = rows["2026-01"]
    assert (jan.cases, jan.claimed_cents) == (2, 30_000)
    # c1 (opened 10 Jan): 3,000 on 20 Jan (month 0) + 7,000 on 15 Mar (2 whole months) → 3,000 | 3,000 | 10,000
    # c2 (opened 31 Jan): 5,000 on 28 Feb (month 0: the 28th is before the 31st), 2,000 on 1 Mar (month 1),
    #   25,000 − 7,000 credit on 10 Apr (month 2) → 5,000 | 7,000 | 25,000 capped at the claim 20,000;
    #   the returned 9,999 on 10 Feb counts nothing
    # after 1: 3,000 + 5,000 = 8,000; after 2: 3,000 + 7,000 = 10,000; after 3…: 10,000 + 20,000 = 30,000
    # shown while 1 Feb + k months ≤ 1 Dec (the day after the report date): k ≤ 10
    assert jan.recovered_cents == [8_000, 10_000] + [30_000] * 8 + [None, None]
    assert jan.rates[:3] == [D("0.2667"), D("0.3333"), D("1.0000")]
    feb = rows["2026-02"]
    # c3 5,000, nothing paid; c4 8,000, paid 1 Sep 08:00 (opened 20 Feb: 6 whole months) → counts from k = 7
    # shown while 1 Mar + k months ≤ 1 Dec: k ≤ 9
    assert (feb.cases, feb.claimed_cents) == (2, 13_000)
    assert feb.recovered_cents == [0] * 6 + [8_000] * 3 + [None] * 3
    assert feb.rates[6] == D("0.6154")  # 8,000 / 13,000 = 0.61538…
    assert rows["2026-11"].recovered_cents == [None] * 12  # opened in November: not one month old on 30 Nov


def test_cure_rate_per_stage(ledger: Engine) -> None:
    rows = {r.stage: r for r in report(ledger).cure_by_stage}
    got = {stage: (r.reached, r.cured, r.rate) for stage, r in rows.items()}
    assert got == {
        "overdue": (7, 0, D("0")),  # every case starts overdue; none paid before its first step
        "reminded": (6, 1, D("0.1667")),  # reminders: c1 c2 c3 c4 c5 c7; c7 paid after it
        "notice_sent": (4, 1, D("0.25")),  # notices: c1 c2 c3 c4; c2 paid after it
        "suspended": (3, 1, D("0.3333")),  # suspended: c1 c3 c4; c1 paid then
        "sms_sent": (2, 0, D("0")),  # pay-link SMS sent: c1 c4 (c5's failed)
        "agency": (4, 0, D("0")),  # handover tasks: c1 c3 c4 c5
        "final_reminder_sent": (1, 0, D("0")),  # c2
        "court_approval": (2, 0, D("0")),  # applications: c3 c4
        "court_filed": (1, 0, D("0")),  # approved: c3
        "termination_approval": (None, 0, None),  # a proposal leaves no ledger fact
        "terminated": (1, 1, D("1")),  # c4, paid after the cure month
    }


def test_cure_rate_per_channel_within_seven_days(ledger: Engine) -> None:
    rows = {r.channel: (r.cases_messaged, r.cured_within, r.rate) for r in report(ledger).cure_by_channel}
    assert rows == {
        # e-mail to c1 c2 c4 c5 c7 (c2's receipt follows a payment: not dunning); c7 paid 2 days 23 h after
        # its reminder; c2's final reminder was 7 days and 1 minute before its payment: outside
        "email": (5, 1, D("0.2")),
        # letters to c1 c2 c3 c4; c2 paid 5 days after its notice letter
        "letter": (4, 1, D("0.25")),
        # SMS to c1 (5 days before paying) and c4 (exactly 7 days: inside); c5's failed SMS does not count
        "sms": (2, 2, D("1")),
    }


def test_the_cure_window_is_a_parameter(ledger: Engine) -> None:
    rows = {r.channel: r.cured_within for r in report(ledger, window=3).cure_by_channel}
    assert rows == {"email": 1, "letter": 0, "sms": 0}  # only c7's reminder (2 days 23 h) is within 3 days


def test_kept_contracts_and_the_sales_cost_saved(ledger: Engine) -> None:
    k = report(ledger).kept
    # c1 reactivated; c2 and c7 paid before any suspension; c3 written off with the contract active;
    # c4 ended terminated; c6 cancelled
    assert (k.reactivated, k.paid_before_suspension, k.written_off, k.terminated, k.cancelled) == (1, 2, 1, 1, 1)
    assert k.kept == 4
    assert k.sales_cost_saved_cents == 4 * 25_000
    assert report(ledger, cost=30_000).kept.sales_cost_saved_cents == 120_000


def test_the_acquisition_cost_setting_defaults_to_250_eur() -> None:
    assert Settings().acquisition_cost_cents == 25_000
    assert Settings(acquisition_cost_cents=12_345).acquisition_cost_cents == 12_345
    with pytest.raises(ValueError, match="acquisition_cost_cents"):
        Settings(acquisition_cost_cents=-1)


def test_ageing_of_open_premiums(ledger: Engine) -> None:
    rows = {r.bucket: (r.premiums, r.contracts, r.open_cents) for r in report(ledger).ageing}
    assert rows == {
        "0–30": (2, 2, 5_500),  # K5 29 days 3,000; K3 30 days 2,500 (K5's premium due today is not past due)
        "31–60": (1, 1, 1_000),  # K3 60 days
        "61–90": (1, 1, 4_000),  # K2 61 days, 5,000 less 1,000 paid (its MD07-blocked premium is left out)
        "91–180": (1, 1, 1_500),  # K1 91 days (its paid and its future premium are left out)
        "> 180": (1, 1, 7_000),  # K4 182 days
    }


def test_court_outcomes_agent_sla_and_bank_backlog(ledger: Engine) -> None:
    r = report(ledger)
    # c3: the court's last event left it served; c4: application prepared, no court event yet
    assert {c.name: c.cases for c in r.court_outcomes} == {"served": 1, "application prepared": 1}
    sla = {a.agent_code: (a.tasks, a.sla_kept, a.sla_missed, a.pending, a.rate) for a in r.agent_sla}
    assert sla == {
        "A-7": (2, 1, 1, 0, D("0.5")),  # c3: first call 5 h after handover; c1: first call after the 24 h
        "B-2": (2, 0, 1, 1, D("0")),  # c4: never called, deadline passed; c5: due 10:00, report at 09:00
    }
    assert {o.name: o.cases for o in r.agent_outcomes} == {"not_reachable": 1, "case paid": 1, "open": 2}
    b = r.bank_backlog
    assert (b.lines, b.amount_cents, b.oldest_booking_date) == (3, 6_000, date(2026, 11, 1))  # L4 is booked
    assert [(q.bucket, q.lines, q.amount_cents) for q in b.buckets] == [
        ("0–3", 1, 1_000),  # booked 29 Nov
        ("4–7", 1, 2_000),  # 25 Nov
        ("> 7", 1, 3_000),  # 1 Nov
    ]


def test_filters_by_plan_product_and_period(ledger: Engine) -> None:
    by_plan = report(ledger, plan=Q)  # only c3 runs the first-premium plan
    assert (by_plan.totals.cases, by_plan.kept.written_off, by_plan.kept.kept) == (1, 1, 1)
    assert [r.cohort for r in by_plan.recovery] == ["2026-02"]
    assert [(a.bucket, a.premiums) for a in by_plan.ageing if a.premiums] == [("0–30", 1), ("31–60", 1)]  # K3's
    kfz = report(ledger, product="Kfz")  # K3 (c3, c7) and K5 (c5)
    assert kfz.totals.cases == 3
    assert {r.channel: r.cases_messaged for r in kfz.cure_by_channel} == {"email": 2, "letter": 1}
    assert sum(a.open_cents for a in kfz.ageing) == 3_000 + 2_500 + 1_000
    february = report(ledger, opened_from=date(2026, 2, 1), opened_to=date(2026, 2, 28))  # c3, c4
    assert february.totals.cases == 2
    assert [r.cohort for r in february.recovery] == ["2026-02"]
    assert {a.agent_code: a.tasks for a in february.agent_sla} == {"A-7": 1, "B-2": 1}
    assert (february.kept.terminated, february.kept.written_off, february.kept.kept) == (1, 1, 1)
    january = report(ledger, as_of=date(2026, 1, 31)).totals  # c7 (paid 5 Jan), c1 and c2 (still open then)
    assert (january.cases, january.open, january.paid) == (3, 2, 1)


def test_a_period_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(analytics.FilterError, match="from 2026-05-01 is after to 2026-04-01"):
        Filters(as_of=AS_OF, opened_from=date(2026, 5, 1), opened_to=date(2026, 4, 1))


def test_an_empty_ledger_gives_zeros_and_no_rates(any_engine: Engine) -> None:
    r = report(any_engine)
    assert r.totals.cases == 0 and r.recovery == [] and r.cure_by_channel == []
    assert all(s.rate is None for s in r.cure_by_stage)
    assert r.kept.sales_cost_saved_cents == 0 and r.bank_backlog.lines == 0


# --- the register, as the case's own activities write it -------------------------------------------


def test_the_case_activities_open_and_close_the_register_row(any_engine: Engine) -> None:
    with session_scope(any_engine) as session:
        customer = service.upsert_customer(session, "C-9", name="-")
        service.upsert_contract(session, "K-9", customer, product="Hausrat")
        service.book_premium(session, external_id="P-9", contract_number="K-9", period_start=date(2026, 1, 1),
                             period_end=date(2026, 1, 31), due_date=date(2026, 1, 1), amount_cents=12_345)  # fmt: skip
    activities = LedgerActivities(any_engine)
    case_id, opened = "dunning-K-9/20260105T080000", datetime(2026, 1, 5, 8, tzinfo=UTC)
    read = LoadArrears(contract_number="K-9", as_of=date(2026, 1, 5), case_id=case_id, plan_id=P, opened_at=opened)
    activities.load_arrears(read)
    with session_scope(any_engine) as session:
        service.book_payment(session, contract_number="K-9", external_ref="R-9a", amount_cents=2_345,
                             received_at=datetime(2026, 1, 9, tzinfo=UTC), source="bank")  # fmt: skip
    activities.load_arrears(read.model_copy(update={"as_of": date(2026, 1, 9)}))  # a later read changes no claim
    with session_scope(any_engine) as session:
        service.set_contract_status(
            session,
            contract_number="K-9",
            to_status=ContractStatus.SUSPENDED,
            reason="-",
            key=f"{case_id}:suspend",
            at=datetime(2026, 1, 20, tzinfo=UTC),
            case_id=case_id,
        )
        service.book_payment(session, contract_number="K-9", external_ref="R-9b", amount_cents=10_000,
                             received_at=datetime(2026, 2, 3, 7, tzinfo=UTC), source="bank")  # fmt: skip
        service.set_contract_status(session, contract_number="K-9", to_status=ContractStatus.ACTIVE, reason="-",
                                    key=f"{case_id}:reactivate", at=datetime(2026, 2, 3, 7, tzinfo=UTC),
                                    case_id=case_id)  # fmt: skip
    close = CloseCase(case_id=case_id, contract_number="K-9", action="paid", reason="Balance cleared",
                      now=datetime(2026, 2, 3, 9, tzinfo=UTC), as_of=date(2026, 2, 3), stage="suspended")  # fmt: skip
    activities.close_case(close)
    activities.close_case(close.model_copy(update={"now": datetime(2026, 2, 4, tzinfo=UTC)}))  # a retry: no change
    with session_scope(any_engine) as session:
        rows = list(session.exec(select(CaseRecord)))
    assert len(rows) == 1
    row = rows[0]
    assert (row.case_id, row.plan_id, row.claimed_cents, row.outcome, row.stage_at_close) == (
        case_id, P, 12_345, "paid", "suspended",
    )  # fmt: skip
    assert (row.opened_at, row.closed_at, row.paid_at) == (
        opened, datetime(2026, 2, 3, 9, tzinfo=UTC), datetime(2026, 2, 3, 7, tzinfo=UTC),
    )  # fmt: skip
    assert (row.suspended, row.contract_status_at_close) == (True, "active")
    k = report(any_engine, as_of=date(2026, 2, 28)).kept
    assert (k.reactivated, k.kept) == (1, 1)


def test_a_case_from_before_the_register_gets_its_row_when_it_closes(any_engine: Engine) -> None:
    with session_scope(any_engine) as session:
        customer = service.upsert_customer(session, "C-8", name="-")
        service.upsert_contract(session, "K-8", customer)
    case_id = "dunning-K-8/20251120T101500"
    LedgerActivities(any_engine).close_case(
        CloseCase(
            case_id=case_id,
            contract_number="K-8",
            action="write_off",
            reason="-",
            now=datetime(2026, 1, 2, tzinfo=UTC),
            as_of=date(2026, 1, 2),
        )  # fmt: skip
    )
    with session_scope(any_engine) as session:
        row = session.exec(select(CaseRecord)).one()
        assert session.exec(select(func.count()).select_from(CaseRecord)).one() == 1
    assert (row.opened_at, row.claimed_cents, row.outcome) == (
        datetime(2025, 11, 20, 10, 15, tzinfo=UTC),
        None,
        "write_off",
    )


def test_a_reader_without_a_case_writes_no_register_row(any_engine: Engine) -> None:
    with session_scope(any_engine) as session:
        customer = service.upsert_customer(session, "C-7", name="-")
        service.upsert_contract(session, "K-7", customer)
    LedgerActivities(any_engine).load_arrears(LoadArrears(contract_number="K-7", as_of=date(2026, 1, 1)))
    with session_scope(any_engine) as session:
        assert session.exec(select(func.count()).select_from(CaseRecord)).one() == 0


# --- the doors: API, page, CLI ----------------------------------------------------------------------


@pytest.fixture
async def web(engine: Engine, tmp_path: Path) -> Any:
    build(engine)
    settings = Settings(data_dir=tmp_path, acquisition_cost_cents=30_000)
    ctx = AppContext(engine, cast(Client, None), settings, Inbound(engine, cast(Client, None), settings))
    apps = BothApps(ctx)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=apps), base_url="http://internal.test") as http:
        yield http


async def test_the_json_api_answers_the_report_with_the_setting_and_the_filters(web: httpx.AsyncClient) -> None:
    answer = await web.get("/api/analytics", params={"as_of": "2026-11-30", "product": "Hausrat"})
    assert answer.status_code == 200
    data = answer.json()
    assert data["filters"]["product"] == "Hausrat"
    assert data["totals"]["cases"] == 4  # c1 c2 c4 c6 (K1, K2, K4)
    assert data["kept"]["acquisition_cost_cents"] == 30_000
    assert data["kept"]["sales_cost_saved_cents"] == 2 * 30_000  # c1 reactivated, c2 paid before suspension
    assert data["recovery"][0]["rates"][0] == "0.2667"


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"plan": "no-such-plan"}, "unknown plan"),
        ({"from": "2026-13-01"}, "from"),
        ({"from": "2026-05-01", "to": "2026-04-01"}, "is after to"),
        ({"window": "0"}, "window"),
        ({"colour": "red"}, "colour"),
        ({"product": "x" * 101}, "product"),
    ],
)
async def test_bad_filters_are_refused_naming_the_problem(
    web: httpx.AsyncClient, query: dict[str, str], named: str
) -> None:
    answer = await web.get("/api/analytics", params=query)
    assert answer.status_code == 422
    assert named in answer.json()["detail"]
    page = await web.get("/analytics", params=query)
    assert page.status_code == 422
    assert named in page.text


async def test_the_page_shows_charts_and_the_same_figures_as_tables(web: httpx.AsyncClient) -> None:
    answer = await web.get("/analytics", params={"as_of": "2026-11-30"})
    assert answer.status_code == 200
    html = answer.text
    charts = re.findall(r'<img src="data:image/svg\+xml;base64,[A-Za-z0-9+/=]+" alt="([^"]+)"', html)
    assert len(charts) == 5 and all("table below has the same figures" in alt for alt in charts)
    assert "<script" not in html.split("</header>", 1)[1]  # no script: the charts are images
    assert all(f'<td class="num">{rate}</td>' in html for rate in ("26.7", "33.3", "61.5"))  # recovery (%)
    assert "1.200,00 €" in html  # 4 kept × 300,00 € (the setting)
    assert "55,00 €" in html  # the 0–30 ageing bucket
    assert "<caption>Cure per stage</caption>" in html


@pytest.fixture
def cli_env(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    """The CLI reads its settings from the environment: this test's ledger, cached settings dropped."""
    build(engine)
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    config.get_settings.cache_clear()
    yield engine
    config.get_settings.cache_clear()  # the next test reads its own environment


def test_the_cli_prints_tables_and_json(cli_env: Engine) -> None:
    import starter

    runner = CliRunner()
    text_out = runner.invoke(starter.app, ["report", "kept", "--as-of", "2026-11-30"])
    assert text_out.exit_code == 0, text_out.output
    assert "kept in all" in text_out.output and "4 × 250,00 € = 1.000,00 €" in text_out.output
    as_json = runner.invoke(starter.app, ["report", "--json", "--as-of", "2026-11-30", "--plan", Q])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["totals"]["cases"] == 1
    bad = runner.invoke(starter.app, ["report", "--from", "2026-05-01", "--to", "2026-04-01"])
    assert bad.exit_code == 2 and "is after to" in bad.output
    unknown = runner.invoke(starter.app, ["report", "--plan", "no-such-plan"])
    assert unknown.exit_code == 2 and "unknown plan" in unknown.output


# --- a real case, through the workflow ------------------------------------------------------------------


async def test_a_real_case_opens_and_closes_its_register_row(
    time_env: WorkflowEnvironment, worker: Worker, engine: Engine, settings: Settings
) -> None:
    """The decider gives the first read the case id and the close its stage: a case that reached
    suspension and was then paid leaves a row a person could check against its history."""
    _today, handle = await one_premium_case(time_env, engine, settings, 10_000)
    await advance_until(time_env, handle, lambda s: s.stage == CaseStage.SUSPENDED)
    with session_scope(engine) as session:
        opened = session.exec(select(CaseRecord)).one()
        assert (opened.claimed_cents, opened.closed_at, opened.plan_id) == (10_000, None, "de-follow-up")
    balance = (await handle.query(DunningCase.status)).balance_cents  # the premium and the notice's letter fee
    paid_at = await time_env.get_current_time()
    await pay(time_env, engine, settings, "pay-all", balance)
    result = await handle.result()
    with session_scope(engine) as session:
        row = session.exec(select(CaseRecord)).one()
    assert row.case_id == result.case_id
    assert (row.outcome, row.stage_at_close, row.suspended, row.contract_status_at_close) == (
        "paid", "suspended", True, "active",
    )  # fmt: skip
    assert row.paid_at is not None and abs((row.paid_at - paid_at).total_seconds()) < 60
    assert row.closed_at is not None and row.closed_at >= row.paid_at >= row.opened_at
