"""Bad input gets a clear 4xx and changes nothing (issue #12, item 9; docs/input-rules.md).

Every refusal here is checked three ways: the status code, a message naming the problem, and that
nothing was written — every row of every table compared before and after, and no workflow started
or signalled (a recorder stands in for the Temporal client).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import Engine, text
from sqlmodel import SQLModel, select

from core.campaign import CONFIRM_SALT
from core.tokens import derive_token_id, sign
from dev.fakes.server import FakeProviders, sendgrid_sign, stripe_signature, twilio_signature
from infra.config import Settings
from ledger.db import session_scope
from ledger.inbound import Inbound
from models.banking import LineStatus, StatementLine
from models.campaign import CampaignQuote, ConsentProof
from models.ledger import Contract, Customer, Payment
from tests.apps import BothApps
from tests.camt import Tx, entry, statement
from tests.conftest import seed_contract
from tests.helpers import form_post
from tests.providers_fakes import CONTRACT, PREMIUMS, FakeTemporal, engine, fake, migrated_ledger, provider_settings
from web.deps import AppContext
from web.public.testpay_signature import HEADER as TESTPAY_HEADER
from web.public.testpay_signature import header_value

__all__ = ["engine", "fake", "migrated_ledger"]  # fixtures, imported for pytest
TODAY = datetime.now(UTC).date()


@dataclass
class Web:
    http: httpx.AsyncClient
    temporal: FakeTemporal
    engine: Engine
    settings: Settings


async def web_for(engine: Engine, settings: Settings) -> AsyncIterator[Web]:
    seed_contract(engine, CONTRACT, premiums=PREMIUMS)
    temporal = FakeTemporal()
    client = cast(Any, temporal)
    app = BothApps(AppContext(engine, client, settings, Inbound(engine, client, settings)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        yield Web(http, temporal, engine, settings)


@pytest_asyncio.fixture
async def web(engine: Engine, settings: Settings) -> AsyncIterator[Web]:
    """The embedded default (TestPay), with the per-minute rate limit out of the way: the campaign's
    own entry limits are what these tests count."""
    async for w in web_for(engine, settings.model_copy(update={"rate_limit_campaign": "10000/minute"})):
        yield w


@pytest_asyncio.fixture
async def providers(engine: Engine, settings: Settings, fake: FakeProviders) -> AsyncIterator[Web]:
    """Stripe, Twilio and SendGrid switched on (pointed at the local fakes)."""
    async for w in web_for(engine, provider_settings(settings, fake)):
        yield w


def snapshot(engine: Engine) -> dict[str, str]:
    """A digest of every row of every table."""
    digests: dict[str, str] = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            rows = conn.execute(text(f'SELECT * FROM "{table.name}" ORDER BY 1')).all()
            digests[table.name] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return digests


async def refused(web: Web, method: str, url: str, status: int, says: str, **kwargs: Any) -> httpx.Response:
    """Send the request; it must be answered with `status` naming `says`, and change nothing."""
    before = snapshot(web.engine)
    calls = (len(web.temporal.started), len(web.temporal.signals))
    response = await web.http.request(method, url, **kwargs)
    assert response.status_code == status, f"{method} {url} → {response.status_code}: {response.text[:400]}"
    assert says.lower() in response.text.lower(), f"{says!r} not in {response.text[:400]}"
    changed = [name for name, digest in snapshot(web.engine).items() if before[name] != digest]
    assert not changed, f"refused request changed {changed}"
    assert (len(web.temporal.started), len(web.temporal.signals)) == calls, "a workflow was started or signalled"
    return response


def premium_booked(**overrides: Any) -> dict[str, Any]:
    due = TODAY + timedelta(days=20)
    return {
        "type": "premium_booked",
        "event_id": "E-P-9",
        "premium_id": "P-9",
        "contract_number": CONTRACT,
        "period_start": due.isoformat(),
        "period_end": (due + timedelta(days=30)).isoformat(),
        "due_date": due.isoformat(),
        "amount_cents": 8_990,
    } | overrides


def payment_received(**overrides: Any) -> dict[str, Any]:
    return {
        "type": "payment_received",
        "event_id": "E-PAY-1",
        "contract_number": CONTRACT,
        "payment_ref": "PAY-1",
        "amount_cents": 5_050,
    } | overrides


# --- money is a JSON integer of cents ---------------------------------------------------------


@pytest.mark.parametrize("amount", [True, "1250", 12.0, 1250.5, 0, -5, 100_000_001, 2**64])
async def test_money_that_is_not_an_integer_of_cents_in_range_is_refused(web: Web, amount: Any) -> None:
    for event in (premium_booked(amount_cents=amount), payment_received(amount_cents=amount)):
        await refused(web, "POST", "/api/ledger/events", 422, "amount_cents", json=event)


async def test_campaign_numbers_and_flags_are_strict_too(web: Web) -> None:
    body = {"quote_id": "Q-strict-1", "ip": "203.0.113.9"}
    for field, value in [
        ("vehicle_age_years", "6"),
        ("vehicle_age_years", 6.0),
        ("vehicle_age_years", True),
        ("yearly_mileage_km", 2**64),
        ("opt_in", "true"),
        ("opt_in", 1),
    ]:
        await refused(web, "POST", "/api/campaign/quotes/abandoned", 422, field, json=body | {field: value})


# --- bounded dates, moments with a time zone ----------------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [
        ("due_date", "0001-01-01"),
        ("due_date", "9999-12-31"),
        ("due_date", (TODAY + timedelta(days=20 * 365)).isoformat()),
        ("period_start", "1900-01-01"),
    ],
)
async def test_a_premium_date_far_in_the_past_or_future_is_refused(web: Web, field: str, value: str) -> None:
    await refused(
        web, "POST", "/api/ledger/events", 422, "date must lie between", json=premium_booked(**{field: value})
    )


@pytest.mark.parametrize(
    "value,says",
    [
        ("2026-11-01T10:00:00", "timezone"),  # naive: which 10 o'clock?
        ("9999-12-31T00:00:00+00:00", "in the future"),
        ((datetime.now(UTC) + timedelta(days=2)).isoformat(), "in the future"),
        ("0001-01-01T00:00:00+00:00", "10 years"),
    ],
)
async def test_a_payment_moment_must_be_aware_and_plausible(web: Web, value: str, says: str) -> None:
    await refused(web, "POST", "/api/ledger/events", 422, says, json=payment_received(received_at=value))


async def test_an_abandonment_in_9999_or_without_time_zone_starts_no_workflow(web: Web) -> None:
    body = {"quote_id": "Q-9999", "ip": "203.0.113.9"}
    for value, says in [("9999-12-31T23:59:59+00:00", "in the future"), ("2026-11-30T10:00:00", "timezone")]:
        await refused(web, "POST", "/api/campaign/quotes/abandoned", 422, says, json=body | {"abandoned_at": value})
    touchpoint = {"event_id": "T-1", "person_key": "0" * 32, "kind": "offer_requested", "channel": "phone"}
    await refused(
        web, "POST", "/api/campaign/touchpoints", 422, "timezone", json=touchpoint | {"occurred_at": "2026-11-30T10:00"}
    )


async def test_queries_and_evidence_refuse_naive_moments(web: Web) -> None:
    await refused(web, "GET", f"/api/contracts/{CONTRACT}/coverage?at=2026-11-01T10:00:00", 422, "timezone")
    await refused(web, "GET", f"/api/contracts/{CONTRACT}/coverage?at=9999-01-01T00:00:00Z", 422, "2200-12-31")
    await refused(web, "GET", "/api/campaign/report?as_of=2026-11-01T10:00:00", 422, "timezone")
    evidence = {"kind": "dispatched", "source": "post", "recorded_by": "mia", "at": "2026-11-01T10:00:00"}
    await refused(web, "POST", "/api/messages/1/evidence", 422, "timezone", json=evidence)


# --- ids beyond 64 bits ---------------------------------------------------------------------------


async def test_ids_beyond_64_bits_are_refused_with_a_valid_body_too(web: Web) -> None:
    huge = 2**64
    evidence = {"kind": "dispatched", "source": "post", "recorded_by": "mia", "at": datetime.now(UTC).isoformat()}
    await refused(web, "POST", f"/api/messages/{huge}/evidence", 422, "message_id", json=evidence)
    assign = {"contract_number": CONTRACT}
    await refused(web, "POST", f"/api/bank/lines/{huge}/assign", 422, "line_id", json=assign)
    await refused(web, "POST", f"/api/bank/lines/{-huge}/dismiss", 422, "line_id", json={"reason": "x" * 5})


# --- control characters ------------------------------------------------------------------------------


def contract_body(**customer: Any) -> dict[str, Any]:
    return {
        "customer": {"customer_number": f"C-{CONTRACT}", "name": "Erika Mustermann", "city": "Köln"} | customer,
        "product": "Hausrat",
    }


@pytest.mark.parametrize(
    "field,value",
    [
        ("name", "Erika\x00Mustermann"),
        ("name", "Erika \x1b[31mMustermann"),  # a terminal escape
        ("name", "Erika \u202eMustermann"),  # right-to-left override: shows differently than stored
        ("street", "Heidestraße 17\nBerlin"),
        ("city", "K\x85ln"),  # C1 control (NEL)
    ],
)
async def test_control_characters_in_names_are_refused(web: Web, field: str, value: str) -> None:
    await refused(
        web, "PUT", f"/api/contracts/{CONTRACT}", 422, "control characters", json=contract_body(**{field: value})
    )


@pytest.mark.parametrize("value", ["1899-12-31", (TODAY + timedelta(days=1)).isoformat(), "17.05.1980"])
async def test_a_birth_date_before_1900_in_the_future_or_not_iso_is_refused(web: Web, value: str) -> None:
    await refused(web, "PUT", f"/api/contracts/{CONTRACT}", 422, "birth_date", json=contract_body(birth_date=value))


async def test_control_characters_in_reasons_and_references_are_refused(web: Web) -> None:
    await refused(web, "POST", "/api/bank/lines/1/dismiss", 422, "control characters", json={"reason": "sent\x07back"})
    await refused(
        web,
        "POST",
        "/api/bank/lines/1/assign",
        422,
        "control characters",
        json={"contract_number": CONTRACT + "\r\nK-2"},
    )
    release = {"reason": "heirs\x1b paid"}
    await refused(web, "POST", f"/api/contracts/{CONTRACT}/release-dunning", 422, "control characters", json=release)


async def test_who_acts_is_never_a_name_in_the_request(web: Web) -> None:
    """The signed-in person or API client is recorded (issue #12): a typed name is refused."""
    for path, body in [
        ("/api/bank/lines/1/assign", {"contract_number": CONTRACT, "staff": "boss"}),
        ("/api/bank/lines/1/dismiss", {"reason": "junk line", "staff": "boss"}),
        (f"/api/contracts/{CONTRACT}/release-dunning", {"reason": "heirs paid", "by": "boss"}),
    ]:
        await refused(web, "POST", path, 422, "Extra inputs are not permitted", json=body)


# --- a reused event id with another payload ------------------------------------------------------


async def test_a_reused_event_id_with_another_payload_is_a_conflict_and_the_same_payload_a_repeat(web: Web) -> None:
    first = await web.http.post("/api/ledger/events", json=premium_booked())
    assert first.status_code == 200, first.text

    await refused(web, "POST", "/api/ledger/events", 409, "different payload", json=premium_booked(amount_cents=9_990))
    other_premium = premium_booked(premium_id="P-10")
    await refused(web, "POST", "/api/ledger/events", 409, "E-P-9", json=other_premium)

    # The same event again, keys in another order and spaced differently: the first answer.
    same = json.dumps(dict(reversed(list(premium_booked().items()))), indent=2)
    before = snapshot(web.engine)
    again = await web.http.post("/api/ledger/events", content=same, headers={"content-type": "application/json"})
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["result"] == first.json()["result"]
    after = snapshot(web.engine)
    assert [t for t in after if after[t] != before[t]] in ([], ["audit_events"])  # the call itself is audited


# --- partial updates ------------------------------------------------------------------------------------


async def test_an_update_changes_only_the_fields_it_names(web: Web) -> None:
    def stored() -> tuple[str | None, str, str | None, str | None]:
        with session_scope(web.engine) as session:
            contract = session.exec(select(Contract).where(Contract.contract_number == CONTRACT)).one()
            customer = session.get(Customer, contract.customer_id)
            assert customer is not None
            return contract.agent_code, contract.product, customer.email, customer.phone

    assert stored() == ("A-7", "Hausrat", "erika@example.org", "+4915112345678")
    # The policy system sends only the new address: agent, product, e-mail and phone stay.
    response = await web.http.put(
        f"/api/contracts/{CONTRACT}",
        json={"customer": {"customer_number": f"C-{CONTRACT}", "name": "Erika Mustermann", "city": "Bonn"}},
    )
    assert response.status_code == 200, response.text
    assert stored() == ("A-7", "Hausrat", "erika@example.org", "+4915112345678")
    with session_scope(web.engine) as session:
        assert session.exec(select(Customer.city)).one() == "Bonn"
    # Naming a field with null clears it: the one way to remove the agent.
    body = {"customer": {"customer_number": f"C-{CONTRACT}", "name": "Erika Mustermann"}, "agent_code": None}
    assert (await web.http.put(f"/api/contracts/{CONTRACT}", json=body)).status_code == 200
    assert stored() == (None, "Hausrat", "erika@example.org", "+4915112345678")


# --- bank statements --------------------------------------------------------------------------------


async def import_camt(web: Web, data: bytes) -> httpx.Response:
    return await web.http.post("/api/bank/statements", content=data, headers={"content-type": "application/xml"})


@pytest.mark.parametrize(
    "data,says",
    [
        (statement(entry(Tx("1E17", ref="X1", text=[CONTRACT]))), "not a plain decimal"),
        (statement(entry(Tx("1e2", ref="X1", text=[CONTRACT]))), "no exponent"),
        (statement(entry(Tx("123456789012.00", ref="X1", text=[CONTRACT]))), "at most 11 before the point"),
        (statement(entry(Tx("50.50", ref="X1", text=[CONTRACT], booking="0001-01-01"))), "booking date 0001-01-01"),
        (statement(entry(Tx("50.50", ref="X1", text=[CONTRACT], booking="9999-12-31"))), "booking date 9999-12-31"),
        (
            statement(entry(Tx("50.50", ref="X1", text=[CONTRACT])), account="DE89370400440532013000"),
            "not the creditor account",
        ),
    ],
)
async def test_a_statement_with_junk_amounts_dates_or_another_account_imports_nothing(
    web: Web, data: bytes, says: str
) -> None:
    await refused(
        web, "POST", "/api/bank/statements", 422, says, content=data, headers={"content-type": "application/xml"}
    )


async def test_a_credit_above_the_line_cap_waits_for_a_person_instead_of_being_booked(web: Web) -> None:
    cap = web.settings.camt_line_cap_cents
    big = f"{(cap + 1) / 100:.2f}"
    response = await import_camt(web, statement(entry(Tx(big, ref="BIG-1", text=[CONTRACT]))))

    assert response.status_code == 200, response.text
    assert response.json() | {"import_id": 0} == {
        "import_id": 0,
        "lines": 1,
        "booked": 0,
        "queued": 1,
        "ignored": 0,
        "duplicates": 0,
    }
    with session_scope(web.engine) as session:
        line = session.exec(select(StatementLine)).one()
        assert line.status == LineStatus.QUEUED and "per-line cap" in line.reason
        assert session.exec(select(Payment)).all() == []
    assert web.temporal.signals == []


# --- signed webhooks: malformed headers and bodies are 400, never 500 ------------------------------


def stripe_checkout(amount: Any) -> bytes:
    event = {
        "id": "evt_bad_1",
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": "cs_1",
                "payment_status": "paid",
                "currency": "eur",
                "amount_total": amount,
                "payment_intent": "pi_1",
                "metadata": {"contract_number": CONTRACT},
            }
        },
    }
    return json.dumps(event).encode()


async def test_malformed_stripe_webhooks_are_400(providers: Web) -> None:
    now = int(time.time())
    good_body = stripe_checkout(17_050)
    good = stripe_signature(good_body)
    signature = good.split(",")[1]
    cases: list[tuple[bytes, bytes | str, str]] = [
        (b"\xff\xfe{not utf-8", good, "not UTF-8"),
        (good_body, b"t=" + str(now).encode() + b",v1=\xe9\xe9", "printable ASCII"),  # non-ASCII signature
        (good_body, f"t={now},t={now + 1},{signature}", "exactly one timestamp"),
        (good_body, f"t=abc,{signature}", "exactly one timestamp"),
        (good_body, f"t=99999999999999999999999,{signature}", "exactly one timestamp"),  # absurd
        (good_body, f"t={now + 86_400 * 365},{signature}", "Stripe-Signature"),  # a year ahead: wrong signature
        (b"{not json", stripe_signature(b"{not json"), "not valid JSON"),
        (b"[" * 100_000, stripe_signature(b"[" * 100_000), "not valid JSON"),
        (stripe_checkout(2**64), stripe_signature(stripe_checkout(2**64)), "amount_total"),
        (stripe_checkout(True), stripe_signature(stripe_checkout(True)), "amount_total"),
    ]
    for body, header, says in cases:
        await refused(
            providers,
            "POST",
            "/webhooks/stripe",
            400,
            says,
            content=body,
            headers={"Stripe-Signature": header, "content-type": "application/json"},
        )


async def test_malformed_sendgrid_webhooks_are_400(providers: Web) -> None:
    now = int(time.time())
    events = b'[{"sg_event_id": "e1", "event": "delivered"}]'

    async def send(body: bytes, signature: str | bytes, timestamp: bytes | str, says: str) -> None:
        headers = {
            "X-Twilio-Email-Event-Webhook-Signature": signature,
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
            "content-type": "application/json",
        }
        await refused(providers, "POST", "/webhooks/sendgrid", 400, says, content=body, headers=headers)

    await send(events, sendgrid_sign(events, now), b"\xb2", "unix seconds")  # "²" passes str.isdigit
    await send(events, sendgrid_sign(events, now), "99999999999999999999", "unix seconds")
    await send(events, sendgrid_sign(events, now), str(now - 86_400), "old")
    await send(b"{not json", sendgrid_sign(b"{not json", now), str(now), "not valid JSON")
    await send(b"\xff\xfe", sendgrid_sign(b"\xff\xfe", now), str(now), "not UTF-8")
    await send(events, "\u00e9t\u00e9".encode("latin-1"), str(now), "does not match")


async def test_a_twilio_callback_with_a_malformed_error_code_is_400(providers: Web) -> None:
    url = "http://testserver/webhooks/twilio/status"
    for code in ["²", "30005x", "9" * 40]:
        params = {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": code}
        await refused(
            providers,
            "POST",
            "/webhooks/twilio/status",
            400,
            "ErrorCode",
            data=params,
            headers={"X-Twilio-Signature": twilio_signature(url, params)},
        )


async def test_malformed_testpay_webhooks_are_4xx_never_500(web: Web) -> None:
    secret, now = web.settings.testpay_webhook_secret, int(time.time())
    body = json.dumps(
        {
            "id": "tp-evt-1",
            "type": "checkout.session.completed",
            "data": {"session_id": "tp-1", "amount_cents": 2**64, "contract_number": CONTRACT},
        }
    ).encode()
    signature = header_value(secret, body, now).split(",")[1]
    cases: list[tuple[bytes, bytes | str, int, str]] = [
        (body, b"t=\xb2," + signature.encode(), 400, "unix seconds"),  # "²"
        (body, f"t=99999999999999999999,{signature}", 400, "unix seconds"),  # absurd timestamp
        (body, f"t={now},t={now},{signature}", 400, "more than one timestamp"),
        (body, b"t=" + str(now).encode() + b",v1=\xe9" * 3, 400, "no v1"),  # non-ASCII candidates
        (body, "x" * 5000, 400, "longer than"),
        (b"\xff\xfe", header_value(secret, b"\xff\xfe", now), 400, "not UTF-8"),
        (b"[" * 100_000, header_value(secret, b"[" * 100_000, now), 400, "not valid JSON"),
        (body, header_value(secret, body, now), 422, "amount_cents"),  # signed, but beyond any real amount
    ]
    for payload, header, status, says in cases:
        await refused(
            web,
            "POST",
            "/webhooks/testpay",
            status,
            says,
            content=payload,
            headers={TESTPAY_HEADER: header, "content-type": "application/json"},
        )


# --- campaign entry limits ------------------------------------------------------------------------


def quote(quote_id: str, email: str, ip: str = "203.0.113.7") -> dict[str, Any]:
    return {
        "quote_id": quote_id,
        "email": email,
        "opt_in": True,
        "consent_text_version": "dsgvo-2026-11",
        "source_page": "https://www.example-versicherung.de/kfz/rechner",
        "ip": ip,
    }


async def test_one_address_gets_at_most_three_quotes_with_reminders_a_day(web: Web) -> None:
    for n in range(3):
        response = await web.http.post("/api/campaign/quotes/abandoned", json=quote(f"Q-A{n}", "ziel@example.org"))
        assert response.status_code == 200, response.text
    started = len(web.temporal.started)

    # Another spelling of the same address is the same person.
    response = await refused(
        web, "POST", "/api/campaign/quotes/abandoned", 429, "too many", json=quote("Q-A3", "Ziel@Example.org")
    )
    assert int(response.headers["Retry-After"]) > 0
    assert len(web.temporal.started) == started
    # A repeat of a registered quote is no new entry: answered as before.
    assert (await web.http.post("/api/campaign/quotes/abandoned", json=quote("Q-A0", "ziel@example.org"))).json()[
        "created"
    ] is False


async def test_one_ip_gets_at_most_twenty_quotes_an_hour(web: Web) -> None:
    for n in range(20):
        response = await web.http.post("/api/campaign/quotes/abandoned", json=quote(f"Q-I{n}", f"p{n}@example.org"))
        assert response.status_code == 200, response.text
    await refused(
        web, "POST", "/api/campaign/quotes/abandoned", 429, "IP address", json=quote("Q-I20", "x@example.org")
    )
    with session_scope(web.engine) as session:
        assert session.exec(select(CampaignQuote).where(CampaignQuote.quote_id == "Q-I20")).first() is None
    # Another visitor behind the same calculator is not affected.
    other = await web.http.post("/api/campaign/quotes/abandoned", json=quote("Q-J0", "y@example.org", "198.51.100.4"))
    assert other.status_code == 200, other.text


async def test_one_ip_confirms_at_most_twenty_addresses_an_hour(web: Web) -> None:
    links = []
    for n in range(21):
        body = quote(f"Q-C{n}", f"c{n}@example.org", ip=f"198.51.100.{n + 1}")
        assert (await web.http.post("/api/campaign/quotes/abandoned", json=body)).status_code == 200
        token = sign(
            web.settings.link_secret,
            CONFIRM_SALT,
            derive_token_id(web.settings.link_secret, "confirm", body["quote_id"]),
        )
        links.append(f"/campaign/confirm/{token}")
    for link in links[:20]:
        assert (await form_post(web.http, link, link)).status_code == 200

    page = await web.http.get(links[20])  # the form (and its CSRF cookie) as a browser opens it
    before, signals = snapshot(web.engine), len(web.temporal.signals)
    response = await form_post(web.http, links[20], links[20])
    assert response.status_code == 429 and "zu viele" in response.text.lower() and page.status_code == 200
    assert snapshot(web.engine) == before and len(web.temporal.signals) == signals
    with session_scope(web.engine) as session:
        consent = session.exec(select(ConsentProof).where(ConsentProof.quote_id == "Q-C20")).one()
        assert consent.confirmed_at is None


def test_business_dates_are_bounded_relative_to_today() -> None:
    """The window moves with the calendar: documented in docs/input-rules.md."""
    from models.inputs import check_business_date

    assert check_business_date(TODAY) == TODAY
    with pytest.raises(ValueError, match="10 years back, 5 ahead"):
        check_business_date(date(1, 1, 1))
