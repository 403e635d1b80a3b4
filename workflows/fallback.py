"""ChannelFallback: a message the provider could not deliver goes out again on the next channel.
(Workflow type `ChannelFallback`; it lived in providers/ until issue #13 and keeps its name, so
running fallbacks and their histories stay valid.)

Started by the webhooks (web/public/delivery_webhooks.py) when Twilio reports an SMS undelivered or SendGrid a
bounce, drop or spam report for a step's main message. Workflow id `fallback-<message key>`, so a
repeated webhook starts nothing new. It sends the same step (same key: the fee and the pay link
stay the same) without the failed channel — letter last — with the figures of today.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities
    from activities.messaging import Outbox
    from core.calendar import local_date
    from core.timezone import BUSINESS_TIMEZONE
    from models.activities import LoadArrears, SendMessage, SentMessage
    from models.messages import CONFIRMATION_KINDS, MessageKind

TIMEOUT = timedelta(minutes=2)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))
# Messages that make sense with nothing open: they are sent even when the balance is zero now.
WITHOUT_BALANCE = {*CONFIRMATION_KINDS, MessageKind.PAYMENT_RECEIPT}


def fallback_workflow_id(message_key: str) -> str:
    return f"fallback-{message_key}"


@workflow.defn(name="ChannelFallback")  # the type name running fallbacks were started with
class ChannelFallback:
    @workflow.run
    async def run(self, request: SendMessage) -> SentMessage | None:
        now = workflow.now()
        resend = request.model_copy(update={"now": now, "as_of": local_date(now, BUSINESS_TIMEZONE)})
        if resend.kind not in WITHOUT_BALANCE:
            arrears = await workflow.execute_activity_method(
                LedgerActivities.load_arrears,
                LoadArrears(contract_number=resend.contract_number, as_of=resend.as_of),
                start_to_close_timeout=TIMEOUT,
                retry_policy=RETRY,
                summary="Read arrears: is anything still open?",
            )
            if arrears.balance_cents <= 0:
                return None  # paid meanwhile: no reminder on another channel
        return await workflow.execute_activity_method(
            Outbox.send_message,
            resend,
            start_to_close_timeout=TIMEOUT,
            retry_policy=RETRY,
            summary=f"Fallback: {resend.kind} on {', '.join(resend.channels)}",
        )
