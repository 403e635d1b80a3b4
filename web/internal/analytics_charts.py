"""The analytics page's charts: Vega-Lite specs (altair) rendered on the server to SVG by
vl-convert (which bundles Vega and needs no network), shown as <img> data URIs. No script reaches
the browser, so the strict CSP (`script-src 'self'`) stays as it is, and an SVG inside <img> cannot
run anything either. Every chart has a table with the same figures next to it (docs/analytics.md)."""

from __future__ import annotations

import base64
from typing import Any

import altair as alt
import vl_convert as vlc

from ledger.analytics import Report

WIDTH = 520
HEIGHT = 240
FONT = "sans-serif"


def _svg(chart: alt.TopLevelMixin) -> str:
    spec: dict[str, Any] = chart.to_dict()
    svg: str = vlc.vegalite_to_svg(spec)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _base(values: list[dict[str, Any]]) -> alt.Chart:
    return alt.Chart(alt.Data(values=values)).properties(width=WIDTH, height=HEIGHT)


def _configured(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    return chart.configure(font=FONT).configure_axis(labelFontSize=11, titleFontSize=12)


def recovery(report: Report) -> str | None:
    values = [
        {"cohort": row.cohort, "month": k, "percent": float(rate) * 100}
        for row in report.recovery
        for k, rate in enumerate(row.rates, start=1)
        if rate is not None
    ]
    if not values:
        return None
    chart = (
        _base(values)
        .mark_line(point=True)
        .encode(
            x=alt.X("month:O", title="Months after opening"),
            y=alt.Y("percent:Q", title="Recovered of claimed (%)", scale=alt.Scale(domain=[0, 100])),
            color=alt.Color("cohort:N", title="Opened in"),
        )
    )
    return _svg(_configured(chart))


def _bars(values: list[dict[str, Any]], x: str, x_title: str, y: str, y_title: str, percent: bool) -> str | None:
    if not values:
        return None
    scale = alt.Scale(domain=[0, 100]) if percent else alt.Undefined
    chart = (
        _base(values)
        .mark_bar(color="#2f5d8a")
        .encode(
            x=alt.X(f"{x}:N", title=x_title, sort=None, axis=alt.Axis(labelAngle=-30)),
            y=alt.Y(f"{y}:Q", title=y_title, scale=scale),
        )
    )
    return _svg(_configured(chart))


def cure_by_stage(report: Report) -> str | None:
    values = [{"stage": r.stage, "percent": float(r.rate) * 100} for r in report.cure_by_stage if r.rate is not None]
    return _bars(values, "stage", "Stage reached last before paying", "percent", "Cure rate (%)", True)


def cure_by_channel(report: Report) -> str | None:
    values = [
        {"channel": r.channel, "percent": float(r.rate) * 100} for r in report.cure_by_channel if r.rate is not None
    ]
    title = f"Cure rate within {report.cure_window_days} days (%)"
    return _bars(values, "channel", "Channel of a dunning message", "percent", title, True)


def ageing(report: Report) -> str | None:
    values = [{"bucket": r.bucket, "euro": (r.open_cents + 50) // 100} for r in report.ageing]  # whole euros
    if not any(v["euro"] for v in values):
        return None
    return _bars(values, "bucket", "Days past due", "euro", "Open premiums (EUR)", False)


def kept(report: Report) -> str | None:
    k = report.kept
    values = [
        {"outcome": "reactivated", "cases": k.reactivated},
        {"outcome": "paid before suspension", "cases": k.paid_before_suspension},
        {"outcome": "written off", "cases": k.written_off},
        {"outcome": "terminated", "cases": k.terminated},
    ]
    if not any(v["cases"] for v in values):
        return None
    return _bars(values, "outcome", "How the contract came out", "cases", "Cases", False)


def charts(report: Report) -> dict[str, str | None]:
    return {
        "recovery": recovery(report),
        "cure_by_stage": cure_by_stage(report),
        "cure_by_channel": cure_by_channel(report),
        "kept": kept(report),
        "ageing": ageing(report),
    }
