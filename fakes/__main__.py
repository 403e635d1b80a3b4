"""Serve the fake providers for `make run`:

    .venv/bin/python -m fakes                      # terminal 1: serves on 127.0.0.1:12111
    env $(.venv/bin/python -m fakes --env) make run  # terminal 2: the engine, pointed at the fakes

Messages then go through the real Twilio and SendGrid SDKs to the fakes, which answer with signed
"delivered" callbacks; pay links open a fake Stripe Checkout whose "Pay" button sends a signed
`checkout.session.completed` to the engine.
"""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from fakes.server import FakeProviders, environment, start


def main() -> None:
    parser = argparse.ArgumentParser(description="Fake Stripe/Twilio/SendGrid APIs for local runs")
    parser.add_argument("--port", type=int, default=12111)
    parser.add_argument("--engine", default="http://127.0.0.1:8000", help="the engine's PUBLIC_BASE_URL")
    parser.add_argument("--env", action="store_true", help="print the engine's settings for these fakes and exit")
    args = parser.parse_args()
    base_url = f"http://127.0.0.1:{args.port}"
    if args.env:
        print(" ".join(f"{k}={v}" for k, v in environment(base_url).items()))
        return
    server, thread = start(FakeProviders(engine_url=args.engine.rstrip("/"), callbacks=True), port=args.port)
    print(f"fake Stripe/Twilio/SendGrid on {base_url}; callbacks to {args.engine}. Engine settings:")
    for key, value in environment(base_url).items():
        print(f"  {key}={value}")

    def stop(_signum: int, _frame: FrameType | None) -> None:
        server.shutdown()
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    thread.join()


if __name__ == "__main__":
    main()
