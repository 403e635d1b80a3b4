"""The court application (Mahnbescheid, §690 ZPO) of a business customer claims the 40 EUR flat fee
of §288(5) BGB as a side claim of its own, next to interest at base rate + 9 points — exactly once
(issue #8): not when a notice already booked it for the case, never for a consumer. On SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, date, datetime
from io import BytesIO

from pypdf import PdfReader
from sqlalchemy import Engine
from sqlmodel import select

from activities.court import application_pdf
from activities.ledger import LedgerActivities
from ledger import service
from ledger.db import session_scope
from ledger.interest_claims import claim_default_interest
from models.activities import PrepareCourtApplication
from models.ledger import CourtApplication, CustomerKind
from tests.conftest import seed_contract

NEW_YEAR = date(2026, 1, 1)  # a holiday: default starts on 3 January (§§193, 286 BGB)
CASE = "dunning-K-1/1"
FLAT_FEE = {"label": "Verzugspauschale (§ 288 Abs. 5 BGB)", "amount_cents": 4_000, "basis": "§ 288 Abs. 5 BGB"}


def business_contract(engine: Engine, kind: CustomerKind = CustomerKind.BUSINESS) -> None:
    seed_contract(engine, "K-1", premiums=[("P-1", NEW_YEAR, 10_000)])
    with session_scope(engine) as session:
        customer = service.get_customer(session, service.get_contract(session, "K-1"))
        customer.kind = kind
        session.add(customer)


def prepare(engine: Engine, case_id: str = CASE) -> dict[str, object]:
    """Prepare the application on 1 March 2026 and return its record."""
    now = datetime(2026, 3, 1, 9, tzinfo=UTC)
    LedgerActivities(engine).prepare_court_application(
        PrepareCourtApplication(case_id=case_id, contract_number="K-1", now=now)
    )
    with session_scope(engine) as session:
        return dict(session.exec(select(CourtApplication).where(CourtApplication.case_id == case_id)).one().record)


def notice_claims_interest(engine: Engine, case_id: str = CASE) -> None:
    """A plan with claim_interest: the notice of 1 February books interest and the flat fee."""
    with session_scope(engine) as session:
        claim_default_interest(
            session,
            contract_number="K-1",
            case_id=case_id,
            key=f"{case_id}:notice",
            as_of=date(2026, 2, 1),
            at=datetime(2026, 2, 1, 9, tzinfo=UTC),
        )


def pay(engine: Engine, reference: str, cents: int) -> None:
    with session_scope(engine) as session:
        service.book_payment(
            session,
            contract_number="K-1",
            external_ref=reference,
            amount_cents=cents,
            received_at=datetime(2026, 2, 10, 12, tzinfo=UTC),
            source="bank",
        )


def flat_fee_lines(record: dict[str, object]) -> int:
    costs = record["costs"]
    assert isinstance(costs, list)
    in_costs = [c for c in costs if c["label"] == FLAT_FEE["label"]]
    return len(in_costs) + (record["flat_fee"] is not None)


def test_a_business_debtor_is_claimed_interest_at_nine_points_and_the_flat_fee_as_its_own_line(
    any_engine: Engine,
) -> None:
    business_contract(any_engine)

    record = prepare(any_engine)

    # principal 100.00; interest 3 Jan – 28 Feb: 57 days × 10.27 % (1.27 + 9) × 100.00 / 365 = 1.6037 → 1.60;
    # flat fee 40.00 on a line of its own; costs: none booked. Side claims 41.60 next to 100.00 principal.
    assert record["flat_fee"] == FLAT_FEE
    interest = record["interest"]
    assert isinstance(interest, list)
    assert [(i["accrued_cents"], i["margin"]) for i in interest] == [
        (160, "base rate + 9 percentage points (§288 BGB)")
    ]
    assert record["costs"] == []
    assert record["claimed_cents"] == 10_000  # the ledger's balance; side claims are listed, not added


def test_a_flat_fee_the_notice_already_booked_is_in_the_costs_and_not_claimed_again(any_engine: Engine) -> None:
    business_contract(any_engine)
    notice_claims_interest(any_engine)  # books 0.82 interest (29 days) and the 40.00 flat fee for the case

    record = prepare(any_engine)

    assert record["flat_fee"] is None
    assert {"label": FLAT_FEE["label"], "amount_cents": 4_000} in record["costs"]  # type: ignore[operator]
    assert flat_fee_lines(record) == 1
    assert record["claimed_cents"] == 10_000 + 82 + 4_000


def test_a_flat_fee_the_customer_already_paid_in_this_case_is_not_claimed_again(any_engine: Engine) -> None:
    business_contract(any_engine)
    notice_claims_interest(any_engine)
    pay(any_engine, "bank-1", 4_000)  # costs first (§367 BGB): the flat fee is paid

    record = prepare(any_engine)

    assert flat_fee_lines(record) == 0
    assert record["claimed_cents"] == 10_000 + 82


def test_a_new_default_in_a_later_case_earns_a_new_flat_fee(any_engine: Engine) -> None:
    business_contract(any_engine)
    notice_claims_interest(any_engine, "dunning-K-1/1")
    pay(any_engine, "bank-1", 4_000)  # the first case's flat fee is paid

    record = prepare(any_engine, "dunning-K-1/2")

    assert record["flat_fee"] == FLAT_FEE


def test_a_consumer_owes_no_flat_fee(any_engine: Engine) -> None:
    business_contract(any_engine, CustomerKind.CONSUMER)

    record = prepare(any_engine)

    assert record["flat_fee"] is None
    interest = record["interest"]
    assert isinstance(interest, list) and interest[0]["accrued_cents"] == 98  # 57 days × 6.27 % (1.27 + 5) = 0.979


def test_the_review_pdf_shows_the_flat_fee(engine: Engine) -> None:
    business_contract(engine)

    pdf = application_pdf(prepare(engine))

    text = "".join(page.extract_text() for page in PdfReader(BytesIO(pdf)).pages)
    assert "Verzugspauschale (§ 288 Abs. 5 BGB)" in text and "40,00" in text


def test_interest_a_notice_already_claimed_is_not_claimed_again_as_a_side_claim(any_engine: Engine) -> None:
    business_contract(any_engine)
    notice_claims_interest(any_engine)  # 0.82 EUR interest (29 days) booked as a ledger item at the notice

    record = prepare(any_engine)

    lines = record["interest"]
    assert isinstance(lines, list) and len(lines) == 1
    line = lines[0]
    # 57 days × 10.27 % on 100.00 = 1.60 accrued; 0.82 of it is in the costs already: 0.78 more, not 1.60.
    assert (line["accrued_cents"], line["already_booked_cents"], line["claimed_cents"]) == (160, 82, 78)
    costs = record["costs"]
    assert isinstance(costs, list) and any(c["amount_cents"] == 82 for c in costs)  # claimed there, once


def test_without_a_notice_claim_the_whole_accrued_interest_is_the_side_claim(any_engine: Engine) -> None:
    business_contract(any_engine)

    lines = prepare(any_engine)["interest"]
    assert isinstance(lines, list) and len(lines) == 1
    line = lines[0]

    assert (line["accrued_cents"], line["already_booked_cents"], line["claimed_cents"]) == (160, 0, 160)
