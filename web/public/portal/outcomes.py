"""What a payment did, as the customer's pages say it after paying (the portal's result page and the
pay link's done page): the ledger's view per contract, and — while the case is restoring cover this
very moment — the case's own answer awaited first (update `payment_outcome`, at most
PAYMENT_ANSWER_SECONDS), so the page says "cover restored" rather than "being restored"."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from ledger import portal_payments as paying
from ledger.db import session_scope
from web.deps import AppContext, berlin_today
from workflows.client import await_payment_outcome


@dataclass(frozen=True)
class Checkout:
    """A portal checkout of this customer, as the result page needs it."""

    paid: bool  # TestPay: captured; Stripe: the customer came back from a completed checkout
    base_ref: str | None  # the provider's reference the shares were booked under (None: not yet known)
    shares: list[paying.Share]

    def ref_of(self, share: paying.Share) -> str | None:
        """The ledger reference of a share's payment; None while the provider has not confirmed it."""
        if not self.paid or not self.base_ref:
            return None
        return paying.share_ref(self.base_ref, share.contract_number, len(self.shares))


def _read_outcomes(ctx: AppContext, checkout: Checkout, products: dict[str, str]) -> list[paying.ShareOutcome]:
    with session_scope(ctx.engine) as session:
        today = berlin_today()
        return [
            paying.outcome(session, share, checkout.ref_of(share), today, products.get(share.contract_number, ""))
            for share in checkout.shares
        ]


async def answered_outcomes(
    ctx: AppContext, checkout: Checkout, products: dict[str, str] | None = None
) -> list[paying.ShareOutcome]:
    """What the ledger shows for each contract of a checkout. Where the payment is booked and clears
    the balance but the contract is still suspended, the case is restoring cover this very moment:
    wait for its answer (at most PAYMENT_ANSWER_SECONDS, all contracts at once), then read again, so
    the page says "cover restored" rather than "being restored"."""
    products = products or {}
    outcomes = _read_outcomes(ctx, checkout, products)
    restoring = [
        (o.contract_number, ref)
        for o, share in zip(outcomes, checkout.shares, strict=True)
        if o.cover == paying.Cover.RESTORING and (ref := checkout.ref_of(share)) is not None
    ]
    if not restoring:
        return outcomes
    timeout = ctx.settings.payment_answer_seconds
    await asyncio.gather(*(await_payment_outcome(ctx.client, n, ref, timeout) for n, ref in restoring))
    return _read_outcomes(ctx, checkout, products)
