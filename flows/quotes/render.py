"""A stored quote document → HTML (Jinja, autoescaped) and PDF (WeasyPrint).

WeasyPrint lays the same HTML out on A4 and embeds the Noto CJK subset it used, so the PDF
shows the same Japanese on a machine without the fonts. File names carry the number and the
revision, so a re-issue writes new files beside the old ones.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from flows.storage import Storage
from warehouse.quotes.tax import yen


def _jdate(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d.year}年{d.month}月{d.day}日"


def _qty(text: str) -> str:
    q = Decimal(text)
    return f"{q:,f}" if q != q.to_integral_value() else f"{int(q):,}"


def _env() -> Environment:
    env = Environment(
        loader=PackageLoader("flows.quotes", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["yen"] = lambda v: yen(Decimal(v))
    env.filters["jdate"] = _jdate
    env.filters["qty"] = _qty
    return env


def html(doc: dict[str, Any]) -> str:
    return _env().get_template("quote.html.j2").render(doc=doc)


def pdf(page: str) -> bytes:
    from weasyprint import HTML  # imported here: it loads pango, about half a second

    out = HTML(string=page).write_pdf()
    if not isinstance(out, bytes):  # write_pdf returns bytes when given no target
        raise TypeError("WeasyPrint returned no PDF")
    return out


def file_stem(doc: dict[str, Any]) -> str:
    safe = re.sub(r"[^\w\-]+", "_", str(doc["number"]))
    return f"{safe}-r{doc['revision']}"


def write(
    doc: dict[str, Any], folder: Storage, keep: dict[str, bytes] | None = None
) -> dict[str, str]:
    """Write ``<number>-r<rev>.html`` and ``.pdf`` under ``folder`` (beside the workspace, or
    under ``KIZUNA_STORAGE_URL``); returns where they are. ``keep`` receives the PDF's bytes
    (the web app hands them to the browser without reading the storage back)."""
    stem = file_stem(doc)
    page = html(doc)
    folder.write_text(page, f"{stem}.html")
    data = pdf(page)
    folder.write_bytes(data, f"{stem}.pdf")
    if keep is not None:
        keep["pdf"] = data
    return {"html": str(folder.shown(f"{stem}.html")), "pdf": str(folder.shown(f"{stem}.pdf"))}
