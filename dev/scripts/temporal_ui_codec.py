"""Check, against a running `make run`, that the dev server's Temporal UI decrypts a case through the
codec endpoint, and save a screenshot (docs/img/temporal-ui-dev-codec.png).

    .venv/bin/python dev/scripts/temporal_ui_codec.py [--ui http://127.0.0.1:8233] [--case dunning-K-1001]

Headless Debian chromium (`apt-get install -y chromium`) through Playwright's `executable_path`; never
`playwright install`. Fails unless every codec call of the page was answered 200 and the case's
current details (encrypted in Temporal) are readable.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from playwright.async_api import async_playwright

ROOT = Path(__file__).resolve().parent.parent.parent


async def check(ui: str, case: str, out: Path) -> None:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium")
        page = await browser.new_page(viewport={"width": 1400, "height": 1050})
        codec: list[int] = []
        page.on("response", lambda r: codec.append(r.status) if "/codec/" in r.url else None)
        await page.goto(f"{ui}/namespaces/default/workflows/{case}", wait_until="load")
        await page.get_by_text("Event History").first.wait_for(timeout=30_000)
        await page.get_by_text("User Metadata").first.click()
        # Summary and current details (encrypted in Temporal) render as Markdown, each in its own frame.
        details = page.frame_locator("#user-metadata-current-details").get_by_text("Open amount")
        await details.first.wait_for(timeout=30_000)
        await page.screenshot(path=str(out))
        await browser.close()
    if not codec or any(status != 200 for status in codec):
        raise SystemExit(f"codec calls answered {codec}: the UI could not decrypt")
    print(f"{len(codec)} codec calls, all 200; screenshot: {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--ui", default="http://127.0.0.1:8233")
    parser.add_argument("--case", default="dunning-K-1001")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "temporal-ui-dev-codec.png")
    args = parser.parse_args()
    asyncio.run(check(args.ui.rstrip("/"), args.case, args.out))


if __name__ == "__main__":
    main()
