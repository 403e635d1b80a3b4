"""Local fakes of the Stripe, Twilio and SendGrid APIs (see fakes/server.py): `python -m fakes`."""
