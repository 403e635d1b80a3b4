"""`make run`'s abandoned-quote campaign (issue #17): a handful of abandoned quotes on the minute-scale
demo plan (CAMPAIGN_PLAN=demo, core/campaign.py DEMO_PLAN), fed through the same inbound path as the
calculator's (`accept_abandoned_quote`: quote, person and consent proof stored once, workflow started or
joined), so the campaign moves in the Temporal UI while a newcomer looks:

- Q-DEMO-1 (wait times "long") and Q-DEMO-4 (wait times "short"): opt-in confirmed on the person's
  behalf once the confirmation mail is in the outbox; their reminders follow minutes later;
- Q-DEMO-2: confirmed, and converts — once its first reminder is out, a contract is signed by phone
  (a `contract_signed` touchpoint through the customer-view path): the quote exits, onboarding and the
  inspection reminder start;
- Q-DEMO-3: the confirmation link waits in the outbox for the newcomer to click (else the address is
  purged after the demo plan's 10 minutes);
- Q-DEMO-6: confirmed, in the holdout: no reminder, followed until its window closes;
- Q-DEMO-5: abandoned without opt-in: followed, never mailed.

After the demo plan's 15-minute conversion window the report (/campaign/report) counts them.
Every step is idempotent (the quote by its id, the confirmation by its proof, the touchpoint by its
event id), so running it again on a restart resumes; finished workflows are never restarted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial

from sqlmodel import Session, select

from ledger.campaign import utc
from ledger.db import session_scope, transaction_in_thread
from models.campaign import CampaignEmail, ConsentProof, TouchpointKind
from models.campaign_requests import QuoteAbandonedIn, TouchpointIn
from models.ledger import Message
from web.deps import AppContext, berlin_today
from web.internal.campaign import accept_abandoned_quote, accept_touchpoint
from web.public.campaign_links import confirm_consent
from workflows.campaign import quote_workflow_id
from workflows.campaign_client import signal_confirmed

DEMO_IP = "198.51.100.17"  # a documentation address: the calculator's visitor
CONFIRMED_BY = "make run demo (confirmed on the person's behalf)"
CONVERTING = "Q-DEMO-2"
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class DemoQuote:
    quote_id: str
    email: str
    what: str
    opt_in: bool = True
    confirm: bool = True
    vehicle_age_years: int = 6
    yearly_mileage_km: int = 12_000


QUOTES = [
    DemoQuote("Q-DEMO-1", "lena.demo@example.org", "confirmed; reminders after 4 and 9 minutes (arm long)"),
    DemoQuote(
        CONVERTING, "jan.demo@example.org", "confirmed; signs a contract by phone after reminder 1 (arm short)"
    ),
    DemoQuote("Q-DEMO-3", "mara.demo@example.org", "confirmation link waits in the outbox for you", confirm=False),
    DemoQuote(
        "Q-DEMO-4",
        "tim.demo@example.org",
        "confirmed; reminders after 2 and 5 minutes (arm short, new car)",
        vehicle_age_years=1,
    ),
    DemoQuote("Q-DEMO-5", "ole.demo@example.org", "no opt-in: followed, never mailed", opt_in=False, confirm=False),
    DemoQuote("Q-DEMO-6", "ida.demo@example.org", "confirmed; holdout: no reminder at all"),
]


def abandoned(quote: DemoQuote) -> QuoteAbandonedIn:
    return QuoteAbandonedIn(
        quote_id=quote.quote_id,
        vehicle_age_years=quote.vehicle_age_years,
        yearly_mileage_km=quote.yearly_mileage_km,
        calculator_step="tarifwahl",
        email=quote.email,
        opt_in=quote.opt_in,
        consent_text_version="dsgvo-2026-11" if quote.opt_in else "",
        ip=DEMO_IP,
        user_agent="Mozilla/5.0 (make run demo)",
        source_page="https://www.example-versicherung.de/kfz/rechner" if quote.opt_in else "",
    )


def _confirmation_sent(ctx: AppContext, quote_id: str) -> bool:
    key = f"{quote_workflow_id(quote_id)}:confirmation"
    with session_scope(ctx.engine) as session:
        return session.exec(select(Message).where(Message.idempotency_key == key)).first() is not None


def _reminder_sent(ctx: AppContext, quote_id: str) -> bool:
    key = f"{quote_workflow_id(quote_id)}:reminder-1"
    with session_scope(ctx.engine) as session:
        return session.exec(select(CampaignEmail).where(CampaignEmail.idempotency_key == key)).first() is not None


async def _until(check: Callable[[], bool], sleep: Sleep, seconds: float, step: float) -> bool:
    waited = 0.0
    while not check():
        if waited >= seconds:
            return False
        await sleep(step)
        waited += step
    return True


async def confirm(ctx: AppContext, quote_id: str) -> str:
    """Confirm the opt-in as the person's click would (proof, entry limits, then the workflow's signal)."""
    now = datetime.now(UTC)

    def work(session: Session) -> tuple[str, datetime | None]:
        consent = session.exec(select(ConsentProof).where(ConsentProof.quote_id == quote_id)).one()
        outcome, proof = confirm_consent(
            session, ctx.settings.link_secret, consent.confirmation_token_id, "127.0.0.1", CONFIRMED_BY, now
        )
        return outcome, utc(proof.confirmed_at) if proof is not None and proof.confirmed_at else None

    outcome, confirmed_at = await transaction_in_thread(ctx.engine, work)
    if outcome in ("confirmed", "already") and confirmed_at is not None:
        await signal_confirmed(ctx.client, quote_workflow_id(quote_id), confirmed_at)
    return outcome


async def seed_campaign(ctx: AppContext, sleep: Sleep = asyncio.sleep, say: Callable[[str], None] = print) -> None:
    """Abandon the demo quotes, confirm the opt-ins meant to be confirmed once their mail is out, and
    convert one after its first reminder. Safe to run on every start."""
    for quote in QUOTES:
        answer = await accept_abandoned_quote(ctx, abandoned(quote), DEMO_IP)
        say(f"demo campaign: {quote.quote_id} ({answer['status']}): {quote.what}")
    for quote in QUOTES:
        if not quote.confirm:
            continue
        if not await _until(partial(_confirmation_sent, ctx, quote.quote_id), sleep, 120, 0.5):
            say(f"demo campaign: no confirmation mail for {quote.quote_id} within 2 minutes; not confirmed")
            continue
        say(f"demo campaign: {quote.quote_id} opt-in {await confirm(ctx, quote.quote_id)}")
    if await _until(partial(_reminder_sent, ctx, CONVERTING), sleep, 15 * 60, 2):
        signed = TouchpointIn(
            event_id=f"demo-contract-{CONVERTING}",
            email=next(q.email for q in QUOTES if q.quote_id == CONVERTING),
            kind=TouchpointKind.CONTRACT_SIGNED,
            channel="phone",
            occurred_at=datetime.now(UTC),
            contract_number="K-DEMO-2",
            inspection_due=berlin_today() + timedelta(days=30),
        )
        result = await accept_touchpoint(ctx, signed)
        say(
            f"demo campaign: {CONVERTING} converted by phone (contract K-DEMO-2); "
            f"follow-ups {', '.join(result['follow_ups']) or 'already running'}"
        )
    else:
        say(f"demo campaign: {CONVERTING}'s first reminder did not go out within 15 minutes; no conversion")
