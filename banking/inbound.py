"""Bank statements from outside (API upload, CLI): parse, import in one transaction, then tell
each paid contract's case. A failure after the commit is repaired by importing the file again:
its lines are duplicates, and their payments are signalled again (the case ignores a repeat)."""

from __future__ import annotations

from datetime import UTC, datetime

from banking import service as bank
from banking.camt import parse_camt053
from ledger.inbound import Inbound
from models.case import PaymentBooked
from workflows.client import notify_payment


class BankStatements:
    def __init__(self, inbound: Inbound) -> None:
        self.inbound = inbound

    async def _notify(self, payments: list[bank.Booked]) -> None:
        for payment in payments:
            await notify_payment(
                self.inbound.client,
                payment.contract_number,
                PaymentBooked(
                    payment_ref=payment.payment_ref, amount_cents=payment.amount_cents, received_at=payment.received_at
                ),
            )

    async def import_camt053(self, data: bytes, imported_by: str) -> bank.ImportReport:
        settings = self.inbound.settings
        if len(data) > settings.max_statement_bytes:
            raise bank.LedgerError(f"statement file is larger than {settings.max_statement_bytes} bytes")
        lines = parse_camt053(data)  # rejects the whole file before anything is written
        report = await self.inbound.in_transaction(
            lambda s: bank.import_statement(
                s,
                data,
                lines,
                imported_by,
                datetime.now(UTC),
                creditor_iban=settings.creditor_iban,
                line_cap_cents=settings.camt_line_cap_cents,
            )
        )
        await self._notify(report.payments)
        return report

    async def assign(
        self, line_id: int, contract_number: str, staff: str, premium_id: str | None = None
    ) -> bank.Booked:
        booked = await self.inbound.in_transaction(
            lambda s: bank.assign_line(s, line_id, contract_number, staff, datetime.now(UTC), premium_id)
        )
        await self._notify([booked])
        return booked

    async def dismiss(self, line_id: int, reason: str, staff: str) -> None:
        await self.inbound.in_transaction(lambda s: bank.dismiss_line(s, line_id, reason, staff, datetime.now(UTC)))
