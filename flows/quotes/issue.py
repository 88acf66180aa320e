"""Issuing and re-issuing quotes for the CLI (and later the web app's deal page).

Reads the ``quotes:`` section, opens the warehouse and hands ``warehouse.quotes.documents``
a renderer that writes the HTML and PDF into the workspace's quotes folder, inside the same
transaction that takes the number: a quote whose PDF could not be written is not issued.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Engine

from flows.quotes import render
from flows.quotes.config import output_dir, quotes_config
from flows.workspace import Workspace
from warehouse.db import open_warehouse
from warehouse.quotes import documents


def today(ws: Workspace) -> date:
    """The issue date is the company's calendar day, not the server's."""
    return datetime.now(ZoneInfo(ws.company.time_zone)).date()


def create(
    ws: Workspace,
    deal: str,
    day: date | None = None,
    engine: Engine | None = None,
    *,
    visible: ColumnElement[bool] | None = None,
    keep: dict[str, bytes] | None = None,
) -> dict[str, Any]:
    """``visible``: the web viewer's deal scope; ``keep``: receives the PDF's bytes."""
    cfg = quotes_config(ws)
    folder = output_dir(ws, cfg)
    eng = engine or open_warehouse(ws.warehouse_url)
    return documents.issue(
        eng,
        deal,
        cfg.settings(),
        day or today(ws),
        lambda doc: render.write(doc, folder, keep),
        visible,
    )


def reissue(
    ws: Workspace, number: str, day: date | None = None, engine: Engine | None = None
) -> dict[str, Any]:
    cfg = quotes_config(ws)
    folder = output_dir(ws, cfg)
    eng = engine or open_warehouse(ws.warehouse_url)
    return documents.reissue(
        eng, number, cfg.settings(), day or today(ws), lambda doc: render.write(doc, folder)
    )
