"""Shared set-up for the customer portal's tests (issue #14): a customer in dunning with a pay link,
and a portal session without going through the step-up (the step-up has its own tests)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, date, datetime, timedelta

import httpx
from sqlalchemy import Engine

from core.tokens import PAY_LINK_SALT, derive_token_id, sign
from infra.config import Settings
from ledger import service
from ledger.db import session_scope
from models.ledger import Customer, PayLink
from models.portal import PortalSession
from tests.conftest import seed_contract
from web.public.portal import session as portal_session
from workflows.client import case_workflow_id

BIRTH_DATE = date(1980, 5, 17)
POSTCODE = "51147"  # tests/conftest.seed_contract's customer
AGENT_PHONE = "+492211234567"  # the agent's, on the portal's agent card


def seed_portal_customer(
    engine: Engine,
    contract_number: str = "K-100001",
    *,
    premiums: list[tuple[str, date, int]] | None = None,
    email: str | None = "erika@example.org",
    phone: str | None = "+4915112345678",
    agent: str | None = "A-7",
    language: str = "de",
) -> int:
    """tests/conftest.seed_contract plus a birth date and language; returns the customer id."""
    seed_contract(engine, contract_number, email=email, phone=phone, agent=agent, premiums=premiums)
    with session_scope(engine) as session:
        if agent is not None:
            service.upsert_agent(session, agent, phone=AGENT_PHONE)
        contract = service.get_contract(session, contract_number)
        customer = session.get(Customer, contract.customer_id)
        assert customer is not None and customer.id is not None
        customer.birth_date = BIRTH_DATE
        customer.language = language
        session.add(customer)
        return customer.id


def make_pay_link(engine: Engine, settings: Settings, contract_number: str, step: str = "sms") -> tuple[str, str]:
    """A pay link of the contract's case as a message would carry it: (signed token, token id)."""
    case_id = case_workflow_id(contract_number)
    token_id = derive_token_id(settings.link_secret, case_id, f"{case_id}:{step}")
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        contract = service.get_contract(session, contract_number)
        if service.find_pay_link(session, token_id) is None:
            session.add(
                PayLink(
                    token_id=token_id,
                    case_id=case_id,
                    contract_id=contract.id or 0,
                    step=f"{case_id}:{step}",
                    created_at=now,
                    expires_at=now + timedelta(days=settings.pay_link_days),
                )
            )
    return sign(settings.link_secret, PAY_LINK_SALT, token_id), token_id


def portal_cookie(engine: Engine, customer_id: int, token_id: str, language: str = "de") -> dict[str, str]:
    """A live portal session for the customer, as a passed step-up would leave it."""
    session_id = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        session.add(
            PortalSession(
                id_hash=hashlib.sha256(session_id.encode()).hexdigest(),
                customer_id=customer_id,
                pay_link_token_id=token_id,
                method="test",
                language=language,
                created_at=now,
                expires_at=now + timedelta(minutes=30),
                last_seen_at=now,
            )
        )
    return {portal_session.COOKIE: session_id}


def portal_client(app: object, cookies: dict[str, str]) -> httpx.AsyncClient:
    """An HTTP client on the apps (tests/apps.BothApps) holding the portal session."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),  # type: ignore[arg-type]
        base_url="http://test",
        cookies=cookies,
    )
