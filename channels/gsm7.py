"""GSM 03.38 alphabet checks and SMS segment counting.

Dunning SMS are paid per segment, and a single character outside the GSM-7 alphabet (a typographic
quote, an en dash, an emoji) silently switches the whole message to UCS-2 and roughly halves the
room per segment (DOMAIN §7). Templates are therefore tested against these functions.
"""

from __future__ import annotations

# GSM 03.38 default alphabet. ESC (0x1B) is left out on purpose: it only introduces extension
# characters and is never meaningful on its own in message text.
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

# Extension table: each of these is sent as ESC + char and so costs two septets.
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

SINGLE_GSM7_SEPTETS = 160
MULTI_GSM7_SEPTETS = 153  # 7 septets go to the concatenation header
SINGLE_UCS2_UNITS = 70
MULTI_UCS2_UNITS = 67

# Typographic characters that sneak in from word processors, mapped to what the customer would
# read the same way. Used only as a safety net for interpolated data, never instead of tests.
_GSM7_REPLACEMENTS: dict[str, str] = {
    "\u00a0": " ",  # no-break space (babel puts one before "€")
    "\u202f": " ",  # narrow no-break space
    "\u2009": " ",  # thin space
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2212": "-",  # minus sign
    "\u201e": '"',  # „
    "\u201c": '"',  # “
    "\u201d": '"',  # ”
    "\u00ab": '"',  # «
    "\u00bb": '"',  # »
    "\u201a": "'",  # ‚
    "\u2018": "'",  # ‘
    "\u2019": "'",  # ’
    "\u2026": "...",  # …
    "\t": " ",
}


def is_gsm7(text: str) -> bool:
    """True if the text can go out in the 7-bit alphabet (basic or extension table)."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def gsm7_septets(text: str) -> int:
    """Septets the text occupies in GSM-7; extension characters cost two."""
    return sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)


def _ucs2_units(text: str) -> list[int]:
    """UTF-16 code units per character: astral characters (most emoji) need a surrogate pair."""
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def _count_parts(costs: list[int], single: int, multi: int) -> int:
    """Segments needed when a character's units may not be split across two segments.

    Neither an ESC+char pair nor a surrogate pair may straddle a segment boundary, so a plain
    ``ceil(total / multi)`` can undercount by one for long messages.
    """
    total = sum(costs)
    if total <= single:
        return 1
    parts = 1
    used = 0
    for cost in costs:
        if used + cost > multi:
            parts += 1
            used = 0
        used += cost
    return parts


def sms_segments(text: str) -> int:
    """How many billable SMS segments the text needs.

    An empty text still costs one message if sent, so it counts as one segment.
    """
    if is_gsm7(text):
        costs = [2 if ch in GSM7_EXTENSION else 1 for ch in text]
        return _count_parts(costs, SINGLE_GSM7_SEPTETS, MULTI_GSM7_SEPTETS)
    return _count_parts(_ucs2_units(text), SINGLE_UCS2_UNITS, MULTI_UCS2_UNITS)


def to_gsm7(text: str, replacement: str = "?") -> str:
    """Map typographic look-alikes to GSM-7 and replace whatever is left over.

    Template text is kept GSM-7 by tests; this guards the interpolated data (a creditor name
    with a typographic apostrophe, say) so one stray character cannot double the SMS cost.
    """
    out: list[str] = []
    for ch in text:
        if ch in GSM7_BASIC or ch in GSM7_EXTENSION:
            out.append(ch)
        elif ch in _GSM7_REPLACEMENTS:
            out.append(_GSM7_REPLACEMENTS[ch])
        else:
            out.append(replacement)
    return "".join(out)


__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "gsm7_septets",
    "is_gsm7",
    "sms_segments",
    "to_gsm7",
]
