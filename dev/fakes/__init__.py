"""Local fakes of the Stripe, Twilio and SendGrid APIs (dev/fakes/server.py) and of an OpenID Connect provider
(dev/fakes/oidc.py): `python -m dev.fakes`."""
