"""Demo data for `make run`: a dozen contracts in different situations, on the minute-long demo
plan, fed through the same inbound path the ledger API uses. Seeds once per data folder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session

from ledger import service
from ledger.inbound import Inbound
from web.deps import berlin_today

SEED_EVENT = "demo-seed-v1"


@dataclass(frozen=True)
class DemoContract:
    number: str
    name: str
    situation: str
    premiums_cents: tuple[int, ...] = (4_990,)
    email: str | None = "kunde@example.org"
    phone: str | None = "+4915100000000"
    agent: str | None = "A-100"
    kind: str = "consumer"
    paid_cents: int = 0  # already paid before the case starts
    direct_debit_return: str | None = None
    not_yet_due: bool = False


CONTRACTS = [
    DemoContract("K-1001", "Erika Mustermann", "one overdue premium, e-mail and phone known"),
    DemoContract("K-1002", "Hans Schmidt", "no e-mail: reminders go out as letters", email=None),
    DemoContract(
        "K-1003", "Aylin Yılmaz", "two overdue premiums, one consolidated case", premiums_cents=(3_250, 3_250)
    ),
    DemoContract("K-1004", "Jonas Weber", "partly paid before the case", premiums_cents=(12_000,), paid_cents=5_000),
    DemoContract("K-1005", "Mia Fischer", "paid in full: no case", paid_cents=4_990),
    DemoContract("K-1006", "Lukas Becker", "direct debit returned (AM04)", direct_debit_return="AM04"),
    DemoContract("K-1007", "Nordlicht GmbH", "business customer", premiums_cents=(89_000,), kind="business"),
    DemoContract("K-1008", "Lea Hoffmann", "premium not yet due: nothing happens", not_yet_due=True),
    DemoContract("K-1009", "Paul Wagner", "no phone: the SMS step falls back to e-mail", phone=None),
    DemoContract("K-1010", "Sophie Schulz", "no agent: handover goes to the back office", agent=None),
    DemoContract("K-1011", "Felix Koch", "small premium", premiums_cents=(1_250,)),
    DemoContract("K-1012", "Emma Richter", "overpaid: the rest stays as credit", paid_cents=6_000),
]


DEMO_BIRTH_DATE = date(1980, 5, 17)


def _master_data(session: Session, today: date) -> None:
    service.upsert_agent(
        session,
        "A-100",
        name="Agentur Sonnenschein",
        email="agentur@example.org",
        phone="+4930123456",
        buddy_code="A-200",
    )
    service.upsert_agent(
        session, "A-200", name="Agentur Nordwind", email="nordwind@example.org", phone="+4940654321", buddy_code="A-100"
    )
    for c in CONTRACTS:
        customer = service.upsert_customer(
            session,
            f"C-{c.number}",
            name=c.name,
            street="Musterweg 1",
            postal_code="10115",
            city="Berlin",
            state="BE",
            birth_date=DEMO_BIRTH_DATE,  # the portal's step-up: postcode 10115 and this date
            email=c.email,
            phone=c.phone,
            kind=c.kind,
        )
        service.upsert_contract(
            session,
            c.number,
            customer,
            agent_code=c.agent,
            product="Hausratversicherung",
            dunning_plan="demo",
            payment_method="direct_debit" if c.direct_debit_return else "self_payment",
        )
        for i, cents in enumerate(c.premiums_cents):
            due = today + timedelta(days=14) if c.not_yet_due else today - timedelta(days=len(c.premiums_cents) - 1 - i)
            service.book_premium(
                session,
                external_id=f"{c.number}-P{i + 1}",
                contract_number=c.number,
                period_start=due,
                period_end=due + timedelta(days=30),
                due_date=due,
                amount_cents=cents,
            )


async def seed(inbound: Inbound) -> list[str]:
    """Seed once; returns what it did (nothing on a second run, so `make run` resumes)."""
    if await inbound.duplicate("demo", SEED_EVENT) is not None:
        return []
    today = berlin_today()
    await inbound.in_transaction(lambda s: _master_data(s, today))
    done: list[str] = []
    now = datetime.now(UTC)
    for c in CONTRACTS:
        if c.direct_debit_return:
            await inbound.payment(
                contract_number=c.number,
                external_ref=f"sepa:{c.number}-1",
                amount_cents=sum(c.premiums_cents),
                source="direct_debit",
                received_at=now,
            )
            await inbound.direct_debit_returned(payment_ref=f"sepa:{c.number}-1", reason_code=c.direct_debit_return)
        elif c.paid_cents:
            await inbound.payment(
                contract_number=c.number,
                external_ref=f"demo:{c.number}-paid",
                amount_cents=c.paid_cents,
                source="ledger",
                received_at=now,
            )
        if not c.not_yet_due and not c.direct_debit_return:
            for i in range(len(c.premiums_cents)):
                await inbound.premium_due(premium_id=f"{c.number}-P{i + 1}")
        done.append(f"{c.number}: {c.situation}")
    await inbound.done("demo", SEED_EVENT, {"contracts": len(CONTRACTS)})
    return done
