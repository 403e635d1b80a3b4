"""Letter PDFs per second: the qualified notice (§38 VVG) as the worker renders it
(`channels.render.render_message`: Typst, PDF/A-2b), one process per core, and on one core.

For comparison, in the same run: the same notice laid out by WeasyPrint from the HTML letter layout
the engine used before (dev/bench/weasyprint_letter.html with today's shared body and macros), and
where one Typst letter's time goes (data and GiroCode, Typst). Background and the choice:
docs/architecture-decisions.md, "Letters as PDF/A-2b".
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader

from dev.bench.common import log
from models.messages import Channel, Creditor, LineItem, MessageContext, MessageKind

GOAL_PER_SECOND = 60.0  # issue #15 P5; 13,000 letters then take under 4 minutes
OLD_LAYOUT = Path(__file__).resolve().parent / "weasyprint_letter.html"


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


def _render(n: int) -> int:
    """One letter as the worker makes it (Typst, PDF/A-2b)."""
    from channels.render import render_message

    pdf = render_message(Channel.LETTER, notice_context(n)).pdf
    assert pdf is not None and pdf.startswith(b"%PDF")
    return len(pdf)


@lru_cache(maxsize=1)
def _old_environment() -> Environment:
    from channels import render

    env = render.environment("de")
    return env.overlay(loader=ChoiceLoader([FileSystemLoader(str(OLD_LAYOUT.parent)), env.loader]))  # type: ignore[list-item]


def old_letter_html(n: int) -> str:
    """The notice as HTML in the WeasyPrint letter layout used until issue #15 P5."""
    from channels import render

    context = notice_context(n)
    values = render._template_vars(context, Channel.LETTER, "de")
    values["subject"] = render.render_template("qualified_notice.letter.subject.txt", values)
    values["girocode"] = render.girocode_data_uri(context)
    return _old_environment().get_template(OLD_LAYOUT.name).render(values)


def _render_old(n: int) -> int:
    """One letter as the engine made it before: WeasyPrint from HTML, with the page-1 anchor read."""
    from channels.render import CONSEQUENCES_ANCHOR, _html_to_pdf

    pdf, anchors = _html_to_pdf(old_letter_html(n))
    assert CONSEQUENCES_ANCHOR in anchors and pdf.startswith(b"%PDF")
    return len(pdf)


def _init(old: bool) -> None:
    (_render_old if old else _render)(0)  # load fonts, compile templates: not part of the rate


def rate(processes: int, letters: int, old: bool = False) -> float:
    """Letters per second over `letters` renders on `processes` warm worker processes."""
    work = _render_old if old else _render
    with ProcessPoolExecutor(processes, initializer=_init, initargs=(old,)) as pool:
        list(pool.map(work, range(processes)))  # every process started and warm
        started = time.perf_counter()
        sizes = list(pool.map(work, range(1, letters + 1)))
        elapsed = time.perf_counter() - started
    assert len(sizes) == letters
    return letters / elapsed


def split() -> dict[str, float]:
    """Milliseconds of one Typst letter: template values, JSON data and GiroCode; Typst to PDF/A-2b."""
    from channels import render

    _render(0)
    template = render._letter_template("de", "qualified_notice")
    assert template is not None
    runs = 20
    totals = {"data_ms": 0.0, "typst_ms": 0.0}
    for n in range(runs):
        # A different letter each time: Typst memoizes, and the same letter twice would cost nothing.
        context = notice_context(1000 + n)
        t0 = time.perf_counter()
        values = render._template_vars(context, Channel.LETTER, "de")
        values["subject"] = "Mahnung"
        values["girocode"] = render.girocode_svg(context)
        values["legal_box_required"] = True
        data = render.letter_data(values, "de")
        t1 = time.perf_counter()
        render._typst_pdf(template, data, context.letter_date)
        t2 = time.perf_counter()
        totals["data_ms"] += (t1 - t0) * 1000
        totals["typst_ms"] += (t2 - t1) * 1000
    return {key: round(value / runs, 1) for key, value in totals.items()}


def run(letters: int = 240) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    log(f"letters: {letters} Typst letters on {cores} processes")
    both = rate(cores, letters)
    log(f"letters: {both:.2f}/s on {cores} cores; now one core")
    one = rate(1, letters // 2)
    log(f"letters: {one:.2f}/s on one core; now the old WeasyPrint layout for comparison")
    old_letters = max(cores * 12, 24)
    old_both = rate(cores, old_letters, old=True)
    parts = split()
    log(f"letters: WeasyPrint {old_both:.2f}/s on {cores} cores; one Typst letter {parts}")
    return {
        "renderer": f"Typst {version('typst')} (PyPI typst), PDF/A-2b",
        "cores": cores,
        "letters": letters,
        "per_second_all_cores": round(both, 2),
        "per_second_one_core": round(one, 2),
        "weasyprint_letters": old_letters,
        "weasyprint_per_second_all_cores": round(old_both, 2),
        "speedup_over_weasyprint": round(both / old_both, 2),
        "one_letter_ms": parts,
        "goal_per_second": GOAL_PER_SECOND,
        "ratio_to_goal": round(both / GOAL_PER_SECOND, 3),
        "met": both >= GOAL_PER_SECOND,
    }
