"""Payment references customers put on bank transfers."""

from __future__ import annotations

import re


def _digits(text: str) -> str:
    return "".join(str(int(ch, 36)) for ch in text)


def rf_reference(payload: str) -> str:
    """ISO 11649 structured creditor reference ("RF" + check digits + payload) for a contract.

    Banks carry it unchanged, so a transfer can be matched to the contract without reading free text.
    """
    body = re.sub(r"[^0-9A-Za-z]", "", payload).upper()
    if not body or len(body) > 21:
        raise ValueError(f"reference payload must have 1..21 letters/digits, got {payload!r}")
    check = 98 - int(_digits(body + "RF00")) % 97
    return f"RF{check:02d}{body}"


def payment_reference(contract_number: str) -> str:
    """The RF reference for a contract, or "" when its number cannot carry one (more than 21
    letters and digits): the transfer then names the contract in free text instead."""
    try:
        return rf_reference(contract_number)
    except ValueError:
        return ""


def is_valid_rf_reference(reference: str) -> bool:
    ref = reference.replace(" ", "").upper()
    if not re.fullmatch(r"RF\d{2}[0-9A-Z]{1,21}", ref):
        return False
    return int(_digits(ref[4:] + ref[:4])) % 97 == 1


def mask_contract_number(contract_number: str) -> str:
    """What a pay page shows: enough to recognise the contract, not enough to identify it."""
    visible = 3 if len(contract_number) > 5 else 1
    return "•" * (len(contract_number) - visible) + contract_number[-visible:]
