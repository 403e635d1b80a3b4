"""Serve the fake providers for `make run`:

    .venv/bin/python -m dev.fakes                      # terminal 1: serves on 127.0.0.1:12111 (+ OIDC on 12112)
    env $(.venv/bin/python -m dev.fakes --env) make run  # terminal 2: the engine, pointed at the fakes

Messages then go through the real Twilio and SendGrid SDKs to the fakes, which answer with signed
"delivered" callbacks; pay links open a fake Stripe Checkout whose "Pay" button sends a signed
`checkout.session.completed` to the engine. Staff sign in through the local OpenID Connect provider
(dev/fakes/oidc.py) as a user with `--oidc-roles`, and API clients get client-credentials JWTs from it
(client `billing`, secret in dev/fakes/oidc.py).
"""

from __future__ import annotations

import argparse
import signal
import sys
from http.server import ThreadingHTTPServer
from types import FrameType

from dev.fakes import oidc
from dev.fakes.server import FakeProviders, environment, start


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake Stripe/Twilio/SendGrid APIs for local runs")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--engine", default="http://127.0.0.1:8000", help="the engine's PUBLIC_BASE_URL")
    parser.add_argument("--internal", default="http://127.0.0.1:8001", help="the engine's INTERNAL_BASE_URL")
    parser.add_argument("--oidc-port", type=int, default=12112, help="the local OpenID Connect provider; 0: off")
    parser.add_argument("--oidc-roles", default="admin", help="roles of the user the OIDC provider signs in (a,b)")
    parser.add_argument("--env", action="store_true", help="print the engine's settings for these fakes and exit")
    args = parser.parse_args()
    base_url = f"http://127.0.0.1:{args.port}"
    oidc_url = f"http://127.0.0.1:{args.oidc_port}"
    settings = environment(base_url) | (oidc.environment(oidc_url) if args.oidc_port else {})
    if args.env:
        print(" ".join(f"{k}={v}" for k, v in settings.items()))
        return
    server, thread = start(FakeProviders(engine_url=args.engine.rstrip("/"), callbacks=True), port=args.port)
    servers: list[ThreadingHTTPServer] = [server]
    print(f"fake Stripe/Twilio/SendGrid on {base_url}; callbacks to {args.engine}.")
    if args.oidc_port:
        roles = [role for role in args.oidc_roles.split(",") if role]
        provider = oidc.development_provider(args.internal, roles)
        servers.append(oidc.start(provider, port=args.oidc_port)[0])
        print(
            f"fake OpenID Connect provider on {oidc_url}: signs in {provider.user and provider.user.email} "
            f"with roles {','.join(roles)} (development only)."
        )
    print("Engine settings:")
    for key, value in settings.items():
        print(f"  {key}={value}")

    def stop(_signum: int, _frame: FrameType | None) -> None:
        for running in servers:
            running.shutdown()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    thread.join()


if __name__ == "__main__":
    main()
