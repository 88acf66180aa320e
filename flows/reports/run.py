"""Drafting 日報 and writing the pipeline page: plain functions the flow tasks and the CLI share.

Files go under ``<workspace>/reports/``: ``YYYY-MM-DD/<staff email>.md|.html`` per rep and
``pipeline.html``. A report the rep has submitted is never redrafted: neither its stored text
nor its files are touched again. A draft file the rep has edited but not submitted is left as
it is too (only its HTML is refreshed), so a scheduled run never overwrites a 所感 in progress.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import PurePath
from typing import Any
from zoneinfo import ZoneInfo

from flows import storage
from flows.reports.config import ReportsConfig, reports_config
from flows.reports.render import daily_html, daily_markdown, pipeline_html
from flows.runtime import engine_for
from flows.storage import Storage
from flows.workspace import Workspace
from kizuna.errors import ConfigError
from warehouse.db import write_transaction
from warehouse.reporting.daily import daily
from warehouse.reporting.drafts import Draft, save_drafts, stored
from warehouse.reporting.model import Staff, day_window
from warehouse.reporting.pipeline import Pipeline, pipeline
from warehouse.reporting.staff import (
    latest_activity_days,
    staff_by_email,
    staff_by_ids,
    staff_with_activity,
    team_members,
    team_names,
)
from warehouse.state import now

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]")


@dataclass(frozen=True)
class Written:
    staff_id: int
    staff: str
    date: str
    status: str  # drafted | edited (file kept) | submitted (kept)
    markdown: str
    md_path: PurePath
    """Where the file is (a local path, or its URL under ``KIZUNA_STORAGE_URL``)."""
    html_path: PurePath
    counts: dict[str, int]

    def row(self) -> dict[str, Any]:
        return {
            "staff": self.staff,
            "date": self.date,
            "status": self.status,
            **self.counts,
            "file": str(self.md_path),
        }


def reports_dir(ws: Workspace) -> Storage:
    """``reports/`` under the storage every worker sees (``flows.storage``)."""
    return storage.root(ws).sub("reports")


def today_in(ws: Workspace) -> date:
    return now().astimezone(ZoneInfo(ws.company.time_zone)).date()


def parse_date(value: str, field: str = "date") -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(
            f"{value!r} is not a date", field=field, fix="write it as YYYY-MM-DD"
        ) from None


def plan(
    ws: Workspace,
    day: str | None = None,
    *,
    up_to: str | None = None,
    staff_email: str | None = None,
) -> list[tuple[int, str]]:
    """Which (staff id, date) pairs to draft.

    With ``day``: every rep with activity that day (or just ``staff_email``). Without it:
    each rep's latest day with activity on or before ``up_to`` (default today).
    """
    tz = ws.company.time_zone
    engine = engine_for(ws.warehouse_url)
    with engine.connect() as conn:
        only: Staff | None = None
        if staff_email:
            only = staff_by_email(conn, staff_email)
            if only is None:
                raise ConfigError(
                    f"no staff user {staff_email!r} in the warehouse",
                    field="--staff",
                    fix="use the address the rep sends mail from (see `kizuna status`)",
                )
        if day is not None:
            d = parse_date(day)
            if only is not None:
                return [(only.id, d.isoformat())]
            return [(s.id, d.isoformat()) for s in staff_with_activity(conn, day_window(d, tz))]
        limit = parse_date(up_to, "up_to") if up_to else today_in(ws)
        ids = [only.id] if only is not None else None
        latest = latest_activity_days(conn, tz, limit, ids)
    return sorted(((sid, d.isoformat()) for sid, d in latest.items()), key=lambda x: x[1])


def _file_stem(email: str) -> str:
    return _UNSAFE.sub("_", email)


def draft_batch(ws: Workspace, pairs: Sequence[tuple[int, str]]) -> list[Written]:
    """Draft, store and write the 日報 of these (staff, date) pairs: one transaction, one batch."""
    cfg: ReportsConfig = reports_config(ws)
    tz = ws.company.time_zone
    engine = engine_for(ws.warehouse_url)
    out: list[Written] = []
    drafts: list[Draft] = []
    rendered: dict[tuple[int, date], tuple[str, str, dict[str, int]]] = {}
    with engine.connect() as conn:
        staff = {s.id: s for s in staff_by_ids(conn, [p[0] for p in pairs])}
        before = stored(conn, [p[0] for p in pairs], [date.fromisoformat(p[1]) for p in pairs])
        for sid, ds in pairs:
            if sid not in staff:
                continue
            d = date.fromisoformat(ds)
            data = daily(conn, staff[sid], d, tz, follow_up_days=cfg.follow_up_days)
            md = daily_markdown(data, cfg.language, ws.company.name)
            html = daily_html(data, cfg.language, ws.company.name)
            rendered[(sid, d)] = (md, html, data.counts())
            drafts.append(Draft(sid, d, md, cfg.language))
    with write_transaction(engine) as conn:
        kept = save_drafts(conn, drafts, now())
        bodies = stored(conn, [k[0] for k in kept], [k[1] for k in kept]) if kept else {}
    root = reports_dir(ws)
    for (sid, d), (md, html, counts) in rendered.items():
        stem = _file_stem(staff[sid].email)
        md_name, html_name = f"{stem}.md", f"{stem}.html"
        folder = d.isoformat()
        prev = before.get((sid, d))
        if (sid, d) in kept:
            status, md = "submitted", bodies[(sid, d)].body_md
            if not root.exists(folder, md_name):
                root.write_text(md, folder, md_name)
        elif (
            prev is not None
            and root.exists(folder, md_name)
            and root.read_text(folder, md_name) != prev.body_md
        ):
            # The rep has been writing in the file (所感) without submitting yet: their text
            # wins over the fresh draft; only the HTML view is refreshed.
            status, md = "edited", root.read_text(folder, md_name)
            root.write_text(html, folder, html_name)
        else:
            status = "drafted"
            root.write_text(md, folder, md_name)
            root.write_text(html, folder, html_name)
        out.append(
            Written(
                sid,
                staff[sid].email,
                d.isoformat(),
                status,
                md,
                root.shown(folder, md_name),
                root.shown(folder, html_name),
                counts,
            )
        )
    return out


def build_pipeline(
    ws: Workspace, team: str | None = None, within: Collection[int] | None = None
) -> Pipeline:
    """The whole company's pipeline, or one team's (the deals its members own); ``within``
    (owner ids, from a viewer's scope) narrows either to what that person may see."""
    cfg = reports_config(ws)
    with engine_for(ws.warehouse_url).connect() as conn:
        owner_ids = None
        if team is not None:
            owner_ids = team_members(conn, team)
            if owner_ids is None:
                raise ConfigError(
                    f"no team {team!r} in the warehouse",
                    field="--team",
                    fix=f"use one of: {', '.join(team_names(conn)) or '(no teams yet)'}",
                )
        if within is not None:
            owner_ids = sorted(set(within) & set(owner_ids if owner_ids is not None else within))
        return pipeline(
            conn,
            now(),
            ws.company.time_zone,
            stale_days=cfg.stale_days,
            stages=cfg.stages,
            owner_ids=owner_ids,
        )


def write_pipeline(
    ws: Workspace,
    team: str | None = None,
    within: Collection[int] | None = None,
    reader: str | None = None,
) -> tuple[PurePath, Pipeline]:
    """Compute the pipeline and write ``reports/pipeline.html`` (``pipeline-<team>.html`` for
    one team, ``pipeline-as-<reader>….html`` for one reader's scope, so a narrowed page never
    replaces the company's); returns the path and the data."""
    cfg = reports_config(ws)
    p = build_pipeline(ws, team, within)
    zone = ZoneInfo(ws.company.time_zone)
    stamp = now().astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    parts = ([f"as-{_file_stem(reader)}"] if reader else []) + ([_file_stem(team)] if team else [])
    name = f"pipeline-{'-'.join(parts)}.html" if parts else "pipeline.html"
    title = f"{ws.company.name} · {team}" if team else ws.company.name
    root = reports_dir(ws)
    root.write_text(pipeline_html(p, cfg.language, title, stamp), name)
    return root.shown(name), p


def yesterday(ws: Workspace) -> str:
    return (today_in(ws) - timedelta(days=1)).isoformat()
