"""Pages: one Jinja2 environment (autoescape on), the reports' look, times in the company zone.

The stylesheet is the reports' own (``flows/reports/templates/_style.css.j2``) followed by
the web additions in ``static/web.css``, served by the app itself (no CDN), so a page on the
screen looks like the report in a mail.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

STATIC = Path(__file__).parent / "static"
NAV: list[tuple[str, str, str]] = [
    ("/today", "My day 本日", "rep"),
    ("/customers", "Customers 顧客", "rep"),
    ("/daily", "日報", "rep"),
    ("/pipeline", "Pipeline パイプライン", "rep"),
    ("/campaigns", "Campaigns", "manager"),
    ("/review", "Review 名寄せ", "admin"),
    ("/admin/sources", "Sources 連携元", "admin"),
    ("/admin/audit", "Audit 監査", "admin"),
]
"""(path, label, least role) of each page in the top bar."""


def _local(value: datetime | date | None, zone: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(ZoneInfo(zone)).strftime(fmt)
    return value.isoformat()


def _money(value: Decimal | int | float | None, currency: str = "JPY") -> str:
    if value is None:
        return ""
    symbol = "¥" if currency == "JPY" else f"{currency} "
    return f"{symbol}{Decimal(value):,.0f}"


@cache
def env() -> Environment:
    e = Environment(
        loader=ChoiceLoader(
            [PackageLoader("flows.web", "templates"), PackageLoader("flows.reports", "templates")]
        ),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    e.filters["money"] = _money
    return e


@cache
def stylesheet() -> str:
    base = env().get_template("_style.css.j2").render()
    return base + "\n" + (STATIC / "web.css").read_text(encoding="utf-8")


@cache
def script() -> str:
    """The one script: refreshes a live part of a page (``data-refresh``); pages work without it."""
    return (STATIC / "kizuna.js").read_text(encoding="utf-8")


def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with the signed-in viewer, the CSRF token and local-time formatting."""
    zone = request.app.state.zone
    viewer = getattr(request.state, "viewer", None)
    html = (
        env()
        .get_template(template)
        .render(
            viewer=viewer,
            csrf=request.session.get("csrf", ""),
            path=request.url.path,
            local=lambda v, fmt="%Y-%m-%d %H:%M": _local(v, zone, fmt),
            zone=zone,
            nav=NAV,
            **context,
        )
    )
    return HTMLResponse(html, status_code=status)
