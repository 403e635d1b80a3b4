"""camt.053 bank statements: parsing, the matching order of DOMAIN.md §6, de-duplication by the
bank's entry reference, and the manual queue — on SQLite and PostgreSQL, and through the web app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from banking import service as bank
from banking.camt import StatementError, parse_camt053
from core.references import rf_reference
from infra import config
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from ledger.service import LedgerError, NotFound
from models.banking import DebtorAccount, LineStatus, MatchRule, StatementImport, StatementLine
from models.ledger import Allocation, PayLink, Payment
from starter import app
from tests.camt import Tx, entry, statement
from tests.conftest import seed_contract
from tests.helpers import form_post
from tests.test_pages import FakeTemporal, make_app

TODAY = datetime.now(UTC).date()
OLD = TODAY - timedelta(days=40)
IBAN = "DE89370400440532013000"
runner = CliRunner()


def seed(engine: Engine) -> None:
    seed_contract(engine, "K-1001", premiums=[("P-1", OLD, 12_150)])
    seed_contract(engine, "K-1002", premiums=[("P-2", OLD, 8_000)])
    seed_contract(engine, "K-1003", premiums=[("P-3", OLD, 8_000)])


def run_import(engine: Engine, data: bytes) -> bank.ImportReport:
    lines = parse_camt053(data)
    with session_scope(engine) as session:
        return bank.import_statement(
            session,
            data,
            lines,
            "test",
            datetime.now(UTC),
            creditor_iban=config.Settings.model_fields["creditor_iban"].default,
            line_cap_cents=config.Settings.model_fields["camt_line_cap_cents"].default,
        )


def line(session: Session, ref: str) -> StatementLine:
    found = session.exec(select(StatementLine).where(StatementLine.entry_ref == ref)).one()
    return found


def counts(engine: Engine) -> tuple[int, int, int, int]:
    with session_scope(engine) as session:
        return (
            service.count_rows(session, Payment),
            service.count_rows(session, Allocation),
            service.count_rows(session, StatementLine),
            service.count_rows(session, StatementImport),
        )


# --- parsing ---------------------------------------------------------------------------------


def test_parse_reads_amounts_references_and_batches() -> None:
    data = statement(
        entry(Tx("121.50", ref="A1", rf=rf_reference("K-1001"), debtor_iban="DE89 3704 0044 0532 0130 00")),
        entry(Tx("10.00", ref="B1", end_to_end="tok-1"), Tx("5.05", ref="B1", text=["Vertrag K-1002"])),
        entry(Tx("3.00", ref="C1", credit=False)),
    )
    lines = parse_camt053(data)
    assert [(x.entry_ref, x.amount_cents, x.credit) for x in lines] == [
        ("A1", 12_150, True),
        ("B1#1", 1_000, True),
        ("B1#2", 505, True),
        ("C1", 300, False),
    ]
    assert lines[0].creditor_reference == rf_reference("K-1001")
    assert lines[0].debtor_iban == IBAN
    assert lines[1].end_to_end_id == "tok-1" and lines[2].end_to_end_id is None  # NOTPROVIDED
    assert lines[2].remittance == "Vertrag K-1002"


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "empty"),
        (b"<Document><unclosed>", "not well-formed XML"),
        (b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"/>', "not a camt.053"),
        (statement(entry(Tx("12.345", ref="X"))), "at most two decimals"),
        (statement(entry(Tx("abc", ref="X"))), "X"),
        (statement(entry(Tx("-5.00", ref="X"))), "must be positive"),
        (statement(entry(Tx("5.00", ref="X", currency=""))), "currency"),
    ],
)
def test_unreadable_statements_are_rejected_whole(data: bytes, problem: str) -> None:
    with pytest.raises(StatementError, match=problem):
        parse_camt053(data)


def test_external_entities_are_not_resolved() -> None:
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"><BkToCstmrStmt><Stmt>'
        b'<Ntry><Amt Ccy="EUR">1.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><AcctSvcrRef>E1</AcctSvcrRef>'
        b"<NtryDtls><TxDtls><RmtInf><Ustrd>&x;</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry></Stmt></BkToCstmrStmt></Document>"
    )
    lines = parse_camt053(evil)
    assert "root:" not in lines[0].remittance


# --- matching, in DOMAIN.md §6 order ------------------------------------------------------------


def test_each_rule_matches_in_order_and_books_once(any_engine: Engine) -> None:
    seed(any_engine)
    with session_scope(any_engine) as session:
        contract = service.get_contract(session, "K-1003")
        now = datetime.now(UTC)
        session.add(
            PayLink(
                token_id="tok-e2e",
                case_id="dunning-K-1003",
                contract_id=contract.id or 0,
                step="sms",
                created_at=now,
                expires_at=now + timedelta(days=30),
            )
        )
    data = statement(
        # a reference AND a different contract in the text: the reference wins (rule 1 before rule 3)
        entry(Tx("121.50", ref="R1", rf=rf_reference("K-1001"), text=["K-1002"], debtor_iban=IBAN)),
        entry(Tx("30.00", ref="R2", end_to_end="tok-e2e")),
        entry(Tx("80.00", ref="R3", text=["Beitrag Vertrag k 1002 November"])),
    )
    report = run_import(any_engine, data)
    assert (report.booked, report.queued, report.duplicates) == (3, 0, 0)
    with session_scope(any_engine) as session:
        rules = {ref: line(session, ref).matched_by for ref in ("R1", "R2", "R3")}
        assert rules == {
            "R1": MatchRule.CREDITOR_REFERENCE,
            "R2": MatchRule.END_TO_END_ID,
            "R3": MatchRule.CONTRACT_IN_TEXT,
        }
        assert service.arrears(session, "K-1001", TODAY).balance_cents == 0
        assert service.arrears(session, "K-1002", TODAY).balance_cents == 0
        assert service.arrears(session, "K-1003", TODAY).balance_cents == 5_000
        # the account that paid K-1001 is remembered for rule 4
        accounts = session.exec(select(DebtorAccount)).all()
        assert [(a.iban, a.learned_from) for a in accounts] == [(IBAN, "R1")]
        assert {p.external_ref for p in session.exec(select(Payment))} == {"bank:R1", "bank:R2", "bank:R3"}
    assert {(p.contract_number, p.amount_cents) for p in report.payments} == {
        ("K-1001", 12_150),
        ("K-1003", 3_000),
        ("K-1002", 8_000),
    }

    before = counts(any_engine)
    again = run_import(any_engine, data)  # the same file again: nothing booked twice
    assert (again.booked, again.duplicates) == (0, 3)
    assert counts(any_engine)[:3] == before[:3]
    assert len(again.payments) == 3  # re-signalled, harmless: the case ignores a known reference


def test_known_account_and_exact_amount_match_last(any_engine: Engine) -> None:
    seed(any_engine)
    with session_scope(any_engine) as session:
        contract = service.get_contract(session, "K-1002")
        session.add(DebtorAccount(contract_id=contract.id or 0, iban=IBAN, learned_from="staff"))
    report = run_import(
        any_engine,
        statement(
            entry(Tx("80.00", ref="I1", debtor_iban=IBAN, text=["Danke"])),
            entry(Tx("79.99", ref="I2", debtor_iban=IBAN, text=["Danke"])),
        ),
    )
    assert (report.booked, report.queued) == (1, 1)
    with session_scope(any_engine) as session:
        assert line(session, "I1").matched_by == MatchRule.IBAN_AND_AMOUNT
        queued = line(session, "I2")
        assert queued.status == LineStatus.QUEUED
        assert "no contract has exactly this amount open" in queued.reason


def test_what_no_rule_can_decide_waits_for_a_person(any_engine: Engine) -> None:
    seed(any_engine)
    report = run_import(
        any_engine,
        statement(
            entry(Tx("50.00", ref="Q1", text=["K-1001 und K-1002"])),  # ambiguous
            entry(Tx("50.00", ref="Q2", text=["Miete Oktober"])),  # nothing to go by
            entry(Tx("50.00", ref="Q3", text=["K-1001"], currency="CHF")),  # another currency
            entry(Tx("50.00", ref="Q4", text=["K-1001"], reversal=True)),  # a reversal
            entry(Tx("9.99", ref="D1", credit=False)),  # money out
        ),
    )
    assert (report.booked, report.queued, report.ignored) == (0, 4, 1)
    with session_scope(any_engine) as session:
        assert "several contracts (K-1001, K-1002)" in line(session, "Q1").reason
        assert "no reference" in line(session, "Q2").reason
        assert "CHF" in line(session, "Q3").reason
        assert "reversal" in line(session, "Q4").reason
        assert line(session, "D1").status == LineStatus.IGNORED
        assert service.count_rows(session, Payment) == 0
        assert [x.entry_ref for x in bank.queue(session)] == ["Q1", "Q2", "Q3", "Q4"]


def test_staff_resolve_the_queue_once(any_engine: Engine) -> None:
    seed(any_engine)
    run_import(any_engine, statement(entry(Tx("80.00", ref="S1", debtor_iban=IBAN)), entry(Tx("1.00", ref="S2"))))
    now = datetime.now(UTC)
    with session_scope(any_engine) as session:
        first, second = (line(session, "S1").id or 0), (line(session, "S2").id or 0)
        booked = bank.assign_line(session, first, "K-1002", "mia", now)
    assert booked == bank.Booked("K-1002", "bank:S1", 8_000, booked.received_at)
    assert booked.received_at is not None and booked.received_at.tzinfo is not None  # travels to the case
    before = counts(any_engine)
    with session_scope(any_engine) as session, pytest.raises(LedgerError, match="is booked, not waiting"):
        bank.assign_line(session, first, "K-1001", "mia", now)
    with session_scope(any_engine) as session, pytest.raises(NotFound, match="K-9999"):
        bank.assign_line(session, second, "K-9999", "mia", now)
    with session_scope(any_engine) as session, pytest.raises(NotFound, match="line 424242"):
        bank.dismiss_line(session, 424242, "sent back", "mia", now)
    assert counts(any_engine) == before
    with session_scope(any_engine) as session:
        bank.dismiss_line(session, second, "sent back to the payer", "mia", now)
    with session_scope(any_engine) as session:
        resolved = line(session, "S1")
        assert (resolved.status, resolved.matched_by, resolved.resolved_by) == (
            LineStatus.BOOKED,
            MatchRule.STAFF,
            "mia",
        )
        assert line(session, "S2").status == LineStatus.DISMISSED
        assert bank.queue(session) == []
        # the person's decision taught the engine the account: rule 4 knows it next time
        assert session.exec(select(DebtorAccount.iban)).all() == [IBAN]


def test_a_changed_line_rejects_the_whole_file(any_engine: Engine) -> None:
    seed(any_engine)
    run_import(any_engine, statement(entry(Tx("10.00", ref="C1", text=["K-1001"]))))
    before = counts(any_engine)
    changed = statement(entry(Tx("12.00", ref="N1", text=["K-1002"])), entry(Tx("11.00", ref="C1", text=["K-1001"])))
    with pytest.raises(LedgerError, match="C1 was imported before with another amount"):
        run_import(any_engine, changed)
    assert counts(any_engine) == before  # N1 was not booked either


# --- through the web app ---------------------------------------------------------------------


@pytest_asyncio.fixture
async def http(engine: Engine, settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FakeTemporal]]:
    seed(engine)
    app, temporal = make_app(engine, settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client,
    ):
        yield client, temporal


async def test_api_import_signals_the_cases_and_queue_is_resolvable(
    http: tuple[httpx.AsyncClient, FakeTemporal], engine: Engine
) -> None:
    client, temporal = http
    data = statement(entry(Tx("121.50", ref="W1", rf=rf_reference("K-1001"))), entry(Tx("7.00", ref="W2")))
    response = await client.post("/api/bank/statements", content=data, headers={"content-type": "application/xml"})
    assert response.status_code == 200, response.text
    assert response.json() | {"import_id": 0} == {
        "import_id": 0,
        "lines": 2,
        "booked": 1,
        "queued": 1,
        "ignored": 0,
        "duplicates": 0,
    }
    assert [(c.workflow_id, c.signal, c.arg.payment_ref) for c in temporal.calls] == [
        ("dunning-K-1001", "payment_booked", "bank:W1")
    ]
    queue = (await client.get("/api/bank/queue")).json()
    assert [(q["entry_ref"], q["amount_cents"]) for q in queue] == [("W2", 700)]

    bad = await client.post(f"/api/bank/lines/{queue[0]['id']}/assign", json={"contract_number": ""})
    assert bad.status_code == 422 and "contract_number" in bad.text
    ok = await client.post(f"/api/bank/lines/{queue[0]['id']}/assign", json={"contract_number": "K-1003"})
    assert ok.status_code == 200, ok.text
    assert temporal.calls[-1].workflow_id == "dunning-K-1003"
    assert (await client.get("/api/bank/queue")).json() == []


async def test_api_rejects_a_broken_file_and_changes_nothing(
    http: tuple[httpx.AsyncClient, FakeTemporal], engine: Engine
) -> None:
    client, temporal = http
    before = counts(engine)
    response = await client.post(
        "/api/bank/statements", content=b"<Document><Stmt>", headers={"content-type": "application/xml"}
    )
    assert response.status_code == 422
    assert "not well-formed XML" in response.json()["detail"]
    assert counts(engine) == before and temporal.calls == []


async def test_staff_page_imports_and_books_from_the_queue(
    http: tuple[httpx.AsyncClient, FakeTemporal], engine: Engine
) -> None:
    client, _ = http
    data = statement(entry(Tx("33.00", ref="P1", text=["Zahlung"])))
    response = await form_post(
        client, "/bank", "/bank/import", {}, files={"file": ("stmt.xml", data, "application/xml")}
    )
    assert response.status_code == 303
    page = await client.get(response.headers["location"])
    assert "1 to the queue" in page.text and "33,00 €" in page.text
    with session_scope(engine) as session:
        line_id = line(session, "P1").id
    assign = f"/bank/lines/{line_id}/assign"
    refused = await form_post(client, "/bank", assign, {"contract_number": "K-0000"})
    assert refused.status_code == 422 and "K-0000" in refused.text
    booked = await form_post(client, "/bank", assign, {"contract_number": "K-1002"})
    assert booked.status_code == 303
    assert "booked to K-1002" in (await client.get(booked.headers["location"])).text
    with session_scope(engine) as session:
        assert service.arrears(session, "K-1002", TODAY).balance_cents == 8_000 - 3_300


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_refuses_a_broken_file_and_lists_the_queue(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(engine)
    run_import(engine, statement(entry(Tx("7.00", ref="L1", text=["Zahlung ohne Bezug"]))))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))  # the `engine` fixture's SQLite file lives here
    config.get_settings.cache_clear()
    try:
        broken = tmp_path / "broken.xml"
        broken.write_bytes(b"<Document>")
        refused = runner.invoke(app, ["bank", "import", str(broken)])
        assert refused.exit_code == 2 and "not well-formed XML" in refused.output
        listed = runner.invoke(app, ["bank", "queue"])
        assert listed.exit_code == 0, listed.output
        assert "7,00 €" in listed.output and "Zahlung ohne Bezug" in listed.output
        typed = runner.invoke(app, ["bank", "assign", "1", "K-1001", "--staff", "boss"])  # who is not typed
        assert typed.exit_code == 2 and "No such option: --staff" in typed.output
    finally:
        config.get_settings.cache_clear()
