"""One round of the payment benchmark (issue #15 P2) on its own dev server, to compare levers side by side.

    python -m dev.bench.payment_round ours|floor [--rate 20] [--count 200] [--workers 1]

Prints one JSON line: p50/p99 from sending the payment until the ledger shows the contract active,
the API answer's p99, how many answers said "cover restored", and CPU per payment per process. The
worker and web app are started from the checkout this module lives in, so a lever that is a code
change is measured by running this from a git worktree that has the change (docs/benchmarks.md,
"Levers measured side by side", says which were compared and how). `make bench` runs the kept
configuration against the floor in interleaved rounds (temporal_bench.payment_vs_floor).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

from dev.bench import temporal_bench as tb
from ledger.db import migrate

KEYS = ("p50_ms", "p99_ms", "answer_p99_ms", "answers_saying_cover_restored", "cpu_ms_per_payment")


async def one_round(path: str, rate: float, count: int, workers: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-pay-") as tmp:
        data = Path(tmp)
        env = await tb.dev_server(data)
        try:
            client = await tb.app_client(env, data)
            url = f"sqlite:///{data / 'ledger.sqlite3'}"
            migrate(url)
            out = await tb.payment_latency(
                client, data, url, count, rate, "KR", workers=workers, floor=(path == "floor")
            )
        finally:
            await env.shutdown()
    return {"path": path, "workers": workers, **{k: out[k] for k in KEYS}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path", choices=["ours", "floor"])
    parser.add_argument("--rate", type=float, default=20.0, help="payments per second (default 20)")
    parser.add_argument("--count", type=int, default=200, help="payments in the round (default 200)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    args = parser.parse_args()
    if args.rate <= 0 or args.count < 1 or args.workers < 1:
        parser.error("--rate must be positive, --count and --workers at least 1")
    print(json.dumps(asyncio.run(one_round(args.path, args.rate, args.count, args.workers))))


if __name__ == "__main__":
    main()
