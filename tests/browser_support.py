"""Debian chromium for the browser tests: a phone-sized context with generous waits (the machine may be
busy). Never `playwright install`; `make test` installs chromium (Makefile `browser`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Playwright

CHROMIUM = Path("/usr/bin/chromium")
WAIT_MS = 30_000
# A Danish customer's phone: chromium then sends Accept-Language: da-DK.
DANISH_PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "da-DK",
    "timezone_id": "Europe/Copenhagen",
}


async def phone_context(playwright: Playwright, options: dict[str, Any]) -> tuple[Browser, BrowserContext]:
    """Headless chromium and one context with `options`, every wait and navigation at WAIT_MS."""
    browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    context = await browser.new_context(**options)
    context.set_default_timeout(WAIT_MS)
    context.set_default_navigation_timeout(WAIT_MS)
    return browser, context
