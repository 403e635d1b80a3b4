"""Properties of the ledger under any order of events (hypothesis): money is conserved, and
re-computing a contract from its events gives the same state as the ledger built up step by step.

For every generated history of premiums, payments (in any arrival order, repeated deliveries
included) and returned debits:
- conservation: open balance − credit = premiums − payments that stayed (to the cent);
- order does not matter: the same payments arriving in another order, or delivered twice, leave
  the same balance, the same credit and — with nothing returned — the same open amount per premium;
- recomputation: a fresh contract that only ever saw the payments that stayed has the same balance
  and credit as the one that saw payments come and go.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from ledger import service
from ledger.db import session_scope
from tests.conftest import seed_contract

AS_OF = date(2026, 11, 20)
WHEN = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
numbers: Iterator[int] = itertools.count(1)

premiums_st = st.lists(st.integers(min_value=1, max_value=50_000), min_size=1, max_size=4)
payments_st = st.lists(st.integers(min_value=1, max_value=60_000), min_size=1, max_size=5)


def new_contract(engine: Engine, premiums: list[int]) -> str:
    number = f"K-P{next(numbers)}"
    seed_contract(
        engine,
        number,
        premiums=[(f"{number}-P{i}", AS_OF - timedelta(days=60 - 10 * i), cents) for i, cents in enumerate(premiums)],
    )
    return number


def apply(engine: Engine, contract: str, payments: list[tuple[str, int]], returned: set[str]) -> None:
    for ref, cents in payments:
        with session_scope(engine) as session:
            service.book_payment(
                session, contract_number=contract, external_ref=ref, amount_cents=cents, received_at=WHEN, source="bank"
            )
    for ref in sorted(returned):
        with session_scope(engine) as session:
            service.reverse_payment(session, ref, "AM04")


def state(engine: Engine, contract: str) -> tuple[int, int, list[int]]:
    with session_scope(engine) as session:
        arrears = service.arrears(session, contract, AS_OF)
        return arrears.balance_cents, arrears.credit_cents, [i.open_cents for i in arrears.items]


@pytest.fixture(scope="module")
def ledger_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    from ledger.db import make_engine, migrate

    url = f"sqlite:///{tmp_path_factory.mktemp('props') / 'ledger.sqlite3'}"
    migrate(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(premiums=premiums_st, amounts=payments_st, data=st.data())
def test_money_is_conserved_and_order_and_repeats_do_not_matter(
    ledger_engine: Engine, premiums: list[int], amounts: list[int], data: st.DataObject
) -> None:
    refs = [(f"pay-{i}", cents) for i, cents in enumerate(amounts)]
    returned = set(data.draw(st.sets(st.sampled_from([r for r, _ in refs])), label="returned"))
    shuffled = data.draw(st.permutations(refs), label="arrival order")
    repeated = shuffled + data.draw(st.lists(st.sampled_from(refs), max_size=3), label="repeat deliveries")

    one = new_contract(ledger_engine, premiums)
    apply(ledger_engine, one, [(f"{one}-{r}", c) for r, c in refs], {f"{one}-{r}" for r in returned})
    other = new_contract(ledger_engine, premiums)
    apply(ledger_engine, other, [(f"{other}-{r}", c) for r, c in repeated], {f"{other}-{r}" for r in returned})

    balance, credit, per_premium = state(ledger_engine, one)
    stayed = sum(c for r, c in refs if r not in returned)
    assert balance - credit == sum(premiums) - stayed  # conservation, to the cent
    assert balance >= 0 and credit >= 0
    other_balance, other_credit, other_per_premium = state(ledger_engine, other)
    assert (other_balance, other_credit) == (balance, credit)
    if not returned:  # oldest first (§366(2) BGB) fills the same premiums whatever the order
        assert other_per_premium == per_premium

    # recomputed from the events that stayed: same balance and credit
    fresh = new_contract(ledger_engine, premiums)
    apply(ledger_engine, fresh, [(f"{fresh}-{r}", c) for r, c in refs if r not in returned], set())
    fresh_balance, fresh_credit, _ = state(ledger_engine, fresh)
    assert (fresh_balance, fresh_credit) == (balance, credit)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    premiums=premiums_st,
    fees=st.lists(st.integers(min_value=1, max_value=500), max_size=3),
    amounts=st.lists(st.integers(min_value=1, max_value=60_000), max_size=4),
    claim_interest=st.booleans(),
)
def test_a_notice_itemises_exactly_the_ledger_balance(
    ledger_engine: Engine, premiums: list[int], fees: list[int], amounts: list[int], claim_interest: bool
) -> None:
    from activities.messaging import Outbox
    from infra.config import Settings
    from ledger.interest_claims import claim_default_interest

    contract = new_contract(ledger_engine, premiums)
    with session_scope(ledger_engine) as session:
        for i, cents in enumerate(fees):
            service.book_fee(
                session,
                key=f"{contract}:fee{i}",
                contract_number=contract,
                case_id="c",
                label="Mahnkosten",
                amount_cents=cents,
                at=WHEN,
            )
        if claim_interest:
            claim_default_interest(session, contract_number=contract, case_id="c", key="c:n", as_of=AS_OF, at=WHEN)
    apply(ledger_engine, contract, [(f"{contract}-p{i}", c) for i, c in enumerate(amounts)], set())
    outbox = Outbox(ledger_engine, Settings())
    with session_scope(ledger_engine) as session:
        arrears = service.arrears(session, contract, AS_OF)
        items = outbox.itemise(session, service.get_contract(session, contract), arrears)
    assert sum(i.amount_cents for i in items) == arrears.balance_cents
    assert all(i.amount_cents > 0 for i in items)  # nothing paid or negative is listed
