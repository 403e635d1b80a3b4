"""Letter PDFs per second: the qualified notice (§38 VVG) as the worker renders it
(`channels.render.render_message`), one process per core.

Also measured: one core alone, both cores with WeasyPrint's fontTools subsetter (what a machine
without the Debian package `libharfbuzz-subset0` gets), and where one letter's time goes
(templates, layout, PDF writing) to show what would have to change to reach the goal.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from typing import Any

from dev.bench.common import log
from models.messages import Channel, Creditor, LineItem, MessageContext, MessageKind

GOAL_PER_SECOND = 22.0  # 13,000 letters in 10 minutes


def notice_context(n: int = 0) -> MessageContext:
    items = [
        LineItem(label="Beitrag 01.10.2026 – 31.10.2026", due_date=date(2026, 10, 1), amount_cents=12_150),
        LineItem(label="Beitrag 01.11.2026 – 30.11.2026", due_date=date(2026, 11, 2), amount_cents=12_150 + n),
        LineItem(label="Mahnkosten", amount_cents=150, kind="fee"),
    ]
    return MessageContext(
        kind=MessageKind.QUALIFIED_NOTICE,
        letter_date=date(2026, 11, 20),
        case_id=f"dunning-K-{n}/2026-11-01T06:00:00Z",
        contract_number=f"K-{100000 + n}",
        product="Hausratversicherung",
        salutation_name="Erika Mustermann",
        address_lines=["Heidestraße 17", "51147 Köln"],
        items=items,
        total_cents=sum(item.amount_cents for item in items),
        deadline=date(2026, 12, 8),
        pay_url=f"http://127.0.0.1:8000/pay/{'x' * 40}{n}",
        payment_reference="RF18539007547034",
        creditor=Creditor(
            name="Beispiel Versicherung AG",
            iban="DE02120300000000202051",
            bic="BYLADEM1001",
            address_lines=["Musterstraße 1", "10115 Berlin"],
        ),
    )


def _init(harfbuzz_subset: bool) -> None:
    if not harfbuzz_subset:
        import weasyprint.pdf.fonts as fonts

        fonts.harfbuzz_subset = None  # WeasyPrint falls back to fontTools
    _render(0)  # load fonts, compile templates: not part of the rate


def _render(n: int) -> int:
    from channels.render import render_message

    pdf = render_message(Channel.LETTER, notice_context(n)).pdf
    assert pdf is not None and pdf.startswith(b"%PDF")
    return len(pdf)


def harfbuzz_subset_available() -> bool:
    import weasyprint.pdf.fonts as fonts

    return getattr(fonts, "harfbuzz_subset", None) is not None


def rate(processes: int, letters: int, harfbuzz_subset: bool = True) -> float:
    """Letters per second over `letters` renders on `processes` warm worker processes."""
    with ProcessPoolExecutor(processes, initializer=_init, initargs=(harfbuzz_subset,)) as pool:
        list(pool.map(_render, range(processes)))  # every process started and warm
        started = time.perf_counter()
        sizes = list(pool.map(_render, range(1, letters + 1)))
        elapsed = time.perf_counter() - started
    assert len(sizes) == letters
    return letters / elapsed


def split() -> dict[str, float]:
    """Milliseconds of one letter: templates + QR code, layout, PDF writing (fonts subset here)."""
    import weasyprint

    from channels import render

    _render(0)
    context = notice_context(1)
    runs = 5
    totals = {"templates_ms": 0.0, "layout_ms": 0.0, "write_pdf_ms": 0.0}
    for _ in range(runs):
        t0 = time.perf_counter()
        env = render._environment("de")
        values = render._template_vars(context, Channel.LETTER, "de")
        values["subject"] = "Mahnung"
        values["girocode"] = render.girocode_data_uri(context)
        html = render._render(env, ["qualified_notice.letter.html"], values)
        t1 = time.perf_counter()
        fetcher = weasyprint.URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)
        document = weasyprint.HTML(string=html, base_url=str(render.TEMPLATES_DIR), url_fetcher=fetcher).render()
        t2 = time.perf_counter()
        document.write_pdf()
        t3 = time.perf_counter()
        totals["templates_ms"] += (t1 - t0) * 1000
        totals["layout_ms"] += (t2 - t1) * 1000
        totals["write_pdf_ms"] += (t3 - t2) * 1000
    return {key: round(value / runs, 1) for key, value in totals.items()}


def run(letters: int = 96) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    log(f"letters: {letters} on {cores} processes")
    both = rate(cores, letters)
    log(f"letters: {both:.2f}/s on {cores} cores; now one core")
    one = rate(1, letters // 2)
    log(f"letters: {one:.2f}/s on one core; now fontTools subsetting")
    fonttools = rate(cores, letters // 2, harfbuzz_subset=False)
    parts = split()
    log(f"letters: fontTools {fonttools:.2f}/s; split {parts}")
    return {
        "cores": cores,
        "letters": letters,
        "per_second_all_cores": round(both, 2),
        "per_second_one_core": round(one, 2),
        "per_second_all_cores_fonttools_subset": round(fonttools, 2),
        "harfbuzz_subset_installed": harfbuzz_subset_available(),
        "one_letter_ms": parts,
        "goal_per_second": GOAL_PER_SECOND,
        "ratio_to_goal": round(both / GOAL_PER_SECOND, 3),
        "met": both >= GOAL_PER_SECOND,
    }
