"""The customer portal (issue #14): the pay link grows into the customer's own page.

- `access`: step-up (a one-time code to the e-mail/phone on file, or postcode and date of birth),
  the language switch, sign-out; `session`: the short server-side portal session.
- `overview`: open items per contract, notices and letters (the recorded PDF bytes), the case in
  plain words, payment history, the agent's card.
- `paying`: the choice of payment method, pay everything at once, bank transfer with GiroCode and RF
  reference, the truthful result.
- `requests`: self-service arrangements within the plan's guardrails (core/selfservice.py), else a
  request for a clerk; dispute with attachment; proof of payment; new bank details (always a clerk).
- `contact`: contact changes confirmed by a code to the new address/number; messages with the agent
  or back office; callback requests.
Every action goes to the case as a workflow update (`web/public/portal/case.py`) and into the audit
trail as "customer portal". `i18n`: German and English words, Babel formatting. `routes`: the
portal's router (the package itself imports nothing, so any module may use `i18n`).
"""
