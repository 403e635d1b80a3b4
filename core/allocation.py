"""Allocation of a payment to open debts (§§366, 367 BGB). Pure: no I/O, no clock.

Within one debt: costs, then interest, then principal (§367(1)). Across debts without a
designation by the payer: the oldest due first (§366(2)). A payment that names a premium goes
to that premium (and its costs and interest) first. What is left over is credit, never lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

DebtKind = Literal["fee", "interest", "premium"]
_KIND_ORDER: dict[DebtKind, int] = {"fee": 0, "interest": 1, "premium": 2}


@dataclass(frozen=True)
class Debt:
    kind: DebtKind
    id: int  # ledger row id of the fee / interest / premium
    premium_key: str  # the premium this debt belongs to (external id)
    due_date: date  # the premium's due date, for oldest-first
    open_cents: int


@dataclass(frozen=True)
class Share:
    debt: Debt
    cents: int


@dataclass(frozen=True)
class AllocationResult:
    shares: tuple[Share, ...]
    credit_cents: int

    @property
    def allocated_cents(self) -> int:
        return sum(s.cents for s in self.shares)


def allocation_order(debts: list[Debt], designated_premium: str | None = None) -> list[Debt]:
    def key(d: Debt) -> tuple[int, date, str, int, int]:
        designated = 0 if designated_premium is not None and d.premium_key == designated_premium else 1
        return (designated, d.due_date, d.premium_key, _KIND_ORDER[d.kind], d.id)

    return sorted((d for d in debts if d.open_cents > 0), key=key)


def allocate(amount_cents: int, debts: list[Debt], designated_premium: str | None = None) -> AllocationResult:
    if amount_cents <= 0:
        raise ValueError(f"amount_cents must be > 0, got {amount_cents}")
    remaining = amount_cents
    shares: list[Share] = []
    for debt in allocation_order(debts, designated_premium):
        if remaining == 0:
            break
        cents = min(remaining, debt.open_cents)
        shares.append(Share(debt, cents))
        remaining -= cents
    return AllocationResult(tuple(shares), remaining)
