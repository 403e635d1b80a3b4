"""The customer portal's screenshots for the README (issue #14), taken by the portal's browser test.

    .venv/bin/python dev/scripts/portal_screenshots.py            # into docs/img/
    .venv/bin/python dev/scripts/portal_screenshots.py --out /tmp/shots

Runs tests/test_portal_browser.py (its own stack: Temporal dev server, worker, both apps on free
ports; Debian chromium at a phone's viewport, 390×844 at 2×) with SAVE_SCREENSHOTS=1, so the pictures
are the pages the scenarios walk and check — the SMS's pay link, the step-up, the overview, an
instalment plan inside and outside the guardrails, the dispute form, paying and its result, a locked
step-up, contact details and messages — and copies every portal-*.png into the folder. Nothing is
saved unless every scenario passed. About a minute; needs `chromium` (`make browser` installs it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
TEST = "tests/test_portal_browser.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="folder for portal-*.png")
    args = parser.parse_args()
    out: Path = args.out.resolve()
    before = {p.name: p.stat().st_mtime for p in out.glob("portal-*.png")} if out.exists() else {}
    env = {**os.environ, "SAVE_SCREENSHOTS": "1", "PORTAL_SCREENSHOTS_DIR": str(out)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST], cwd=ROOT, env=env)
    if run.returncode != 0:
        print(f"{TEST} failed: no screenshots saved", file=sys.stderr)
        return run.returncode
    saved = sorted(p for p in out.glob("portal-*.png") if before.get(p.name) != p.stat().st_mtime)
    for shot in saved:
        print(shot.relative_to(ROOT) if shot.is_relative_to(ROOT) else shot)
    return 0 if saved else 1


if __name__ == "__main__":
    sys.exit(main())
