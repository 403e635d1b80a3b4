"""Money is integer cents everywhere; these helpers convert only at the edges."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation


def cents_to_decimal(cents: int) -> Decimal:
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


def parse_amount(text: str) -> int:
    """'12.34', '12,34' or '12' → 1234 cents. Rejects more than two decimals and non-numbers."""
    cleaned = text.strip().replace(" ", "")
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")
    if len(cleaned) > 20:
        raise ValueError(f"amount must be at most 20 characters, got {text!r}")
    try:
        value = Decimal(cleaned)
        if not value.is_finite():
            raise ValueError(f"amount must be a finite number, got {text!r}")
        if value != value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP):
            raise ValueError(f"amount must have at most two decimals, got {text!r}")
    except InvalidOperation:
        raise ValueError(f"amount must be a number like 12.34, got {text!r}") from None
    return int(value * 100)


def format_eur(cents: int) -> str:
    """German style, '1.234,56 €'. Written out (not babel) because workflows call it and babel
    reads locale files lazily, which the workflow sandbox rightly forbids."""
    sign = "-" if cents < 0 else ""
    euros, rest = divmod(abs(cents), 100)
    return f"{sign}{euros:,}".replace(",", ".") + f",{rest:02d} €"
