"""Local fakes of the Stripe, Twilio and SendGrid APIs (fakes/server.py) and of an OpenID Connect provider
(fakes/oidc.py): `python -m fakes`."""
