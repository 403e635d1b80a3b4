"""The portal's accessibility check in a real browser (issue #14, WCAG 2.1 AA): axe-core on the page
as rendered, and the keyboard — the first Tab lands on the skip link, every form control is reached
by Tab, and the focused element is visibly marked.

axe-core comes from the axe-playwright-python package (its bundled axe.min.js; pyproject's test
extras). It is injected with `page.evaluate`, which runs through the DevTools protocol: the page's
Content-Security-Policy (script-src 'self', no inline script) governs the page's own scripts, not
the test driver's, so neither `bypass_csp` nor a relaxed header is needed — the page is checked
under the very policy customers get. (`page.add_script_tag` would insert an inline <script> the
policy rightly blocks.) tests/test_portal_browser.py asserts that no page logged a CSP violation.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from playwright.async_api import BrowserContext, ConsoleMessage, Page

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
_AXE_SOURCE: list[str] = []  # read once


def axe_source() -> str:
    if not _AXE_SOURCE:
        _AXE_SOURCE.append(files("axe_playwright_python").joinpath("axe.min.js").read_text(encoding="utf-8"))
    return _AXE_SOURCE[0]


@dataclass(frozen=True)
class Violation:
    rule: str
    impact: str
    help: str
    targets: list[str]

    def __str__(self) -> str:
        return f"{self.rule} ({self.impact}): {self.help} — at {', '.join(self.targets)}"


async def axe_violations(page: Page, tags: list[str] | None = None) -> list[Violation]:
    """Run axe-core on the page with the WCAG 2.1 A/AA rules; the violations found."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(axe_source())
    options = {"runOnly": {"type": "tag", "values": tags or WCAG_TAGS}, "resultTypes": ["violations"]}
    results: dict[str, Any] = await page.evaluate("options => axe.run(document, options)", options)
    return [
        Violation(
            rule=str(v["id"]),
            impact=str(v.get("impact") or "-"),
            help=str(v.get("help", "")),
            targets=[" ".join(str(part) for part in node.get("target", [])) for node in v.get("nodes", [])],
        )
        for v in results["violations"]
    ]


# Everything a keyboard user must be able to reach: visible, enabled form controls and links.
_MARK_CONTROLS = """() => {
    const visible = el => {
        const box = el.getBoundingClientRect();
        const style = getComputedStyle(el);
        return box.width > 0 && box.height > 0 && style.visibility !== 'hidden' && style.display !== 'none';
    };
    const wanted = [...document.querySelectorAll(
        'input:not([type=hidden]), select, textarea, button, a[href]'
    )].filter(el => !el.disabled && (visible(el) || el.classList.contains('skip')));
    wanted.forEach((el, i) => el.setAttribute('data-kbd', String(i)));
    return wanted.map(el => ({
        index: String(el.getAttribute('data-kbd')),
        kind: el.tagName.toLowerCase() + (el.type ? '[type=' + el.type + ']' : ''),
        group: el.type === 'radio' ? 'radio:' + el.name : '',
        name: (el.id ? '#' + el.id : '') + (el.name ? ' name=' + el.name : '')
            + ' "' + (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 40) + '"',
    }));
}"""

_FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    const outlined = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
    return {
        index: el.getAttribute('data-kbd'),
        skip: el.classList.contains('skip') && el.getAttribute('href') === '#main',
        marked: outlined || style.boxShadow !== 'none',
        name: el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (el.name ? '[name=' + el.name + ']' : ''),
    };
}"""


async def keyboard_problems(page: Page, skip_link: bool = True) -> list[str]:
    """Tab through the page from the top: what a keyboard user cannot do (empty: all fine).
    `skip_link`: the first Tab must land on the skip link to #main (the portal's frame has one)."""
    controls: list[dict[str, str]] = await page.evaluate(_MARK_CONTROLS)
    await page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    await page.keyboard.press("Tab")
    problems: list[str] = []
    first = await page.evaluate(_FOCUSED)
    if skip_link and (first is None or not first["skip"]):
        problems.append(f"the first Tab focuses {first and first['name']}, not the skip link to #main")
    reached: set[str] = set()
    unmarked: list[str] = []
    focused, previous = first, None
    # Every control once, then focus leaves the page. A date field takes a Tab per part (day, month,
    # year) while it stays the focused element: so a control met again right after itself is not a round.
    for _ in range(4 * len(controls) + 5):
        if focused is None:
            break
        index = focused["index"]
        if index is not None and index != previous:
            if index in reached:
                break  # round again
            reached.add(index)
            if not focused["marked"]:
                unmarked.append(focused["name"])
        previous = index
        await page.keyboard.press("Tab")
        focused = await page.evaluate(_FOCUSED)
    groups_reached = {c["group"] for c in controls if c["group"] and c["index"] in reached}
    for control in controls:
        if control["index"] in reached or (control["group"] and control["group"] in groups_reached):
            continue  # a radio group is one Tab stop: arrow keys move within it
        problems.append(f"not reachable by Tab: {control['kind']} {control['name']}")
    problems += [f"focus not visible (no outline) on {name}" for name in unmarked]
    return problems


async def assert_accessible(page: Page, where: str = "", skip_link: bool = True) -> None:
    """axe-core's WCAG 2.1 A/AA rules and the keyboard check; fails with a readable list."""
    found = [str(v) for v in await axe_violations(page)] + await keyboard_problems(page, skip_link)
    if found:
        name = where or page.url
        raise AssertionError(f"{name}: {len(found)} accessibility problem(s):\n  " + "\n  ".join(found))


class Console:
    """Everything a browser page logs; a CSP violation is reported both as a console error by chromium
    and as a `securitypolicyviolation` event, which an init script logs with a marker. Shared by the
    browser tests (tests/test_browser.py, tests/test_portal_browser.py)."""

    MARKER = "CSP violation:"
    LISTENER = (
        "document.addEventListener('securitypolicyviolation', e => console.error("
        "'CSP violation: ' + e.violatedDirective + ' blocked ' + e.blockedURI + ' on ' + e.documentURI));"
    )

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def watch(self, context: BrowserContext) -> Page:
        await context.add_init_script(script=self.LISTENER)
        page = await context.new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.messages.append(f"pageerror: {error}"))
        return page

    def _console(self, message: ConsoleMessage) -> None:
        self.messages.append(f"{message.type}: {message.text} ({message.location.get('url', '')})")

    def csp_violations(self) -> list[str]:
        return [m for m in self.messages if self.MARKER in m or "Content Security Policy" in m]
