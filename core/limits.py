"""Limits on what the engine accepts, named once (docs/input-rules.md).

Request models (web/, models/inputs.py) and the workflows' update validators use these names, so a
limit is changed in one place and a refusal states the same number at every door. Plain constants:
workflow code reads them, and a validator must decide the same way on every replay.
"""

from __future__ import annotations

from datetime import timedelta

# --- money (integer cents) -----------------------------------------------------------------------

# One amount at most 1,000,000.00 EUR (a premium, a payment, a promise): more is a typo or an attack.
MAX_REQUEST_CENTS = 100_000_000
# The ledger's own ceiling for any single amount, whatever door it came through (provider webhooks,
# bank lines): far below what a 64-bit column holds, so no amount can overflow the database.
MAX_LEDGER_CENTS = 10**13

# --- free text (characters) ----------------------------------------------------------------------

MAX_REASON_CHARS = 500  # reasons and notes: staff actions, court events, agent outcomes, bank queue
MAX_REFERENCE_CHARS = 64  # references and ids: payment references, court file numbers, contract numbers
MAX_STAFF_NAME_CHARS = 64  # who agreed an instalment plan, recorded evidence
MAX_APPROVER_CHARS = 100  # the person who approves or decides: court filing, enforcement order, termination
MAX_AGENT_CHARS = 40  # the agent on the agent page, and the receipt number of money an agent collected
MAX_PAYMENT_SOURCE_CHARS = 20  # where a staff-booked payment came from ("counter", "bank", …)

# --- time ----------------------------------------------------------------------------------------

MAX_HOLD = timedelta(days=366)  # a staff hold ends within a year
MAX_INSTALMENTS = 24  # an instalment plan has at most 24 instalments …
MAX_INSTALMENT_SPAN = timedelta(days=366)  # … and ends within a year
MIN_INSTALMENTS = 2  # one "instalment" is a promise to pay
