"""What a person reads after a run: progress bars while it works, tables when it is done."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text
from sqlalchemy import Connection, func, select

from flows.cli.common import esc, when_ago, zone_label
from flows.config import load
from flows.runtime import engine_for
from flows.workspace import Workspace
from warehouse import schema as t


class _RichReporter:
    def __init__(self, progress: Progress) -> None:
        self.progress = progress

    def start(self, label: str, total: int | None) -> Callable[[int], None]:
        tid = self.progress.add_task(label, total=total)

        def tick(n: int) -> None:
            self.progress.advance(tid, n)

        return tick

    def note(self, text: str) -> None:
        self.progress.console.print(escape(text), style="yellow")


@contextmanager
def stream_errors_once(debug: bool) -> Iterator[None]:
    """Keep Prefect's ERROR lines for failed task and flow runs off the terminal (they still
    reach the Prefect API): the summary names each failed stream once, with its reason."""
    import logging

    names = ("prefect.flow_runs", "prefect.task_runs")
    saved = {n: logging.getLogger(n).propagate for n in names}
    if not debug:
        for n in names:
            logging.getLogger(n).propagate = False
    try:
        yield
    finally:
        for n, v in saved.items():
            logging.getLogger(n).propagate = v


def _reason(error: str) -> str:
    """A stored stream error without the exception's class name for Kizuna's own errors."""
    head, sep, rest = error.partition(": ")
    own = {"FatalError", "ConfigError", "AuthError", "QuotaError", "TransientError"}
    if sep and head in own:
        return rest
    return error.split("\n")[0].split(" [SQL:")[0][:300]


@contextmanager
def progress_bars(console: Console) -> Iterator[_RichReporter]:
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        yield _RichReporter(progress)


@contextmanager
def showing_progress(console: Console) -> Iterator[None]:
    """Bars for whatever the flows report (``flows.progress``) while the block runs: identity
    resolution's steps, a campaign's recipients, an export's rows."""
    from flows.progress import set_reporter

    with progress_bars(console) as reporter:
        set_reporter(reporter)
        try:
            yield
        finally:
            set_reporter(None)


def print_run(console: Console, workspace_file: Path, run_id: str, seconds: float) -> set[str]:
    """The run's table; returns the ``source/stream`` labels whose failure it printed."""
    ws = load(workspace_file)
    engine = engine_for(ws.warehouse_url)
    r = t.SyncRun
    with engine.connect() as conn:
        rows = conn.execute(select(t.table(r)).where(r.run_id == run_id).order_by(r.id)).all()
        table = Table(title=f"Sync run {run_id[:8]} — {seconds:.1f} s", title_justify="left")
        for col in RUN_COLUMNS:
            table.add_column(col, justify="left" if col in ("source/stream", "status") else "right")
        for row in rows:
            style = {"completed": "green", "failed": "red"}.get(row.status, "yellow")
            table.add_row(
                Text(f"{row.connector}/{row.stream}"),
                Text(row.status, style=style),
                f"{row.read:,}",
                f"{row.inserted:,}",
                f"{row.updated:,}",
                f"{row.unchanged:,}",
                f"{row.deleted:,}",
                f"[red]{row.quarantined:,}[/]" if row.quarantined else "0",
            )
        console.print(table)
        if any(row.inserted + row.updated > row.read - row.unchanged for row in rows):
            console.print(
                "Rows are what the source holds; records are what they became: a row can make "
                "several (a contact and the company it names, each its own record until the "
                "resolver links them).",
                style="dim",
            )
        console.print(entity_table(ws))
        errors = [row for row in rows if row.error]
        for row in errors:
            console.print(
                f"[red]{esc(row.connector)}/{esc(row.stream)} failed:[/] "
                f"{esc(' '.join(_reason(row.error).split()))}",
                soft_wrap=True,
            )
    from flows.cli.sources import horizon_lines, unmapped_lines

    names = sorted({row.connector for row in rows} & set(ws.sources))
    # Unmapped headers of the files this run read: an unchanged file was reported when it was
    # read (and `kizuna sources` shows it any time); opening a workbook costs a second.
    read = sorted({row.connector for row in rows if row.read} & set(ws.sources))
    for line in unmapped_lines(ws, read) + horizon_lines(ws, names):
        console.print(f"[yellow]note:[/] {line}", soft_wrap=True)
    return {f"{row.connector}/{row.stream}" for row in errors}


RUN_COLUMNS = (
    "source/stream",
    "status",
    "rows read",
    "records new",
    "records updated",
    "rows unchanged",
    "deleted",
    "quarantined",
)


def entity_table(ws: Workspace) -> Table:
    """Counts per entity (live rows) and per source (rows each source contributed)."""
    engine = engine_for(ws.warehouse_url)
    entities = [
        ("organizations", t.Organization),
        ("people", t.Person),
        ("deals", t.Deal),
        ("activities", t.Activity),
        ("staff users", t.StaffUser),
    ]
    sr = t.SourceRecord
    with engine.connect() as conn:
        per_source: dict[tuple[str, str], int] = {
            (c, e): int(n)
            for c, e, n in conn.execute(
                select(sr.connector, sr.entity, func.count(func.distinct(sr.entity_id)))
                .where(sr.deleted_at.is_(None))
                .group_by(sr.connector, sr.entity)
            )
        }
        sources = sorted({c for c, _ in per_source})
        table = Table(title="Customer store", title_justify="left")
        table.add_column("entity")
        table.add_column("total", justify="right")
        for s in sources:
            table.add_column(Text(f"from {s}"), justify="right")
        key = {
            "organizations": "organization",
            "people": "person",
            "deals": "deal",
            "activities": "activity",
        }
        for label, model in entities:
            q = select(func.count()).select_from(model)
            if hasattr(model, "deleted_at"):
                q = q.where(model.deleted_at.is_(None))
            total = int(conn.execute(q).scalar_one())
            cells = [f"{per_source.get((s, key.get(label, '')), 0):,}" for s in sources]
            table.add_row(label, f"{total:,}", *cells)
            if label == "people":
                _identity_rows(conn, table, total, len(sources))
        q_total = conn.execute(
            select(func.count()).select_from(t.Quarantine).where(t.Quarantine.resolved_at.is_(None))
        ).scalar_one()
        table.add_row("[red]quarantined[/]", f"{int(q_total):,}", *["" for _ in sources])
    return table


def _identity_rows(conn: Connection, table: Table, people: int, width: int) -> None:
    """Customers after identity resolution: people records less those merged into others."""
    from warehouse.identity import schema as ids

    c, m = ids.IdentityCluster, ids.IdentityMatch
    members, clusters = conn.execute(
        select(func.coalesce(func.sum(c.size), 0), func.count()).where(c.entity == "person")
    ).one()
    review = conn.execute(
        select(func.count()).where(m.entity == "person", m.decision == "review")
    ).scalar_one()
    merged = int(members) - int(clusters)
    if merged or review:
        table.add_row("  → customers", f"{people - merged:,}", *["" for _ in range(width)])
        table.caption = (
            f"Identity resolution: {merged:,} person records merged into others; "
            f"{int(review):,} pairs wait in `kizuna review list`."
        )


def cursor_text(cur: object) -> str:
    """A cursor in a few words: file sets by count, scalar positions as key=value."""
    if cur is None:
        return "—"
    if isinstance(cur, dict):
        parts = []
        for k, v in cur.items():
            if isinstance(v, dict | list):
                parts.append(f"{len(v)} {k}")
            elif k == "path" and isinstance(v, str):
                parts.append(Path(v).name)
            elif v is not None and k not in ("sha256", "mtime_ns", "size"):
                parts.append(f"{k}={v}")
        text = ", ".join(parts)
    else:
        text = json.dumps(cur, ensure_ascii=False)
    return text if len(text) <= 40 else text[:39] + "…"


def print_status(console: Console, ws: Workspace) -> None:
    from flows.sources import registry

    engine = engine_for(ws.warehouse_url)
    st, r, q = t.SyncState, t.SyncRun, t.Quarantine
    table = Table(title=f"Streams — {esc(ws.company.name)}", title_justify="left")
    zone = ws.company.time_zone
    for col in (
        "source/stream",
        "cursor",
        f"last run ({zone_label(zone)})",
        "status",
        "ins",
        "upd",
        "unch",
        "del",
        "quarantine",
    ):
        table.add_column(
            col, justify="right" if col in ("ins", "upd", "unch", "del", "quarantine") else "left"
        )
    with engine.connect() as conn:
        cursors = {
            (c, s): (cur, ts)
            for c, s, cur, ts in conn.execute(
                select(st.connector, st.stream, st.cursor, st.updated_at)
            )
        }
        quarantined = {
            (c, s): int(n)
            for c, s, n in conn.execute(
                select(q.connector, q.stream, func.count())
                .where(q.resolved_at.is_(None))
                .group_by(q.connector, q.stream)
            )
        }
        for name in ws.sources:
            try:
                stream_names = [s.stream for s in registry.streams(ws, name)]
            except Exception as exc:
                table.add_row(Text(name), Text(str(exc), style="red"), "", "", "", "", "", "", "")
                continue
            for stream in stream_names:
                last = conn.execute(
                    select(t.table(r))
                    .where(r.connector == name, r.stream == stream)
                    .order_by(r.id.desc())
                    .limit(1)
                ).first()
                cur, _ = cursors.get((name, stream), (None, None))
                text = cursor_text(cur)
                nq = quarantined.get((name, stream), 0)
                if last is None:
                    table.add_row(
                        Text(f"{name}/{stream}"), Text(text), "never", "", "", "", "", "", str(nq)
                    )
                    continue
                style = {"completed": "green", "failed": "red"}.get(last.status, "yellow")
                table.add_row(
                    Text(f"{name}/{stream}"),
                    Text(text),
                    when_ago(last.finished_at or last.started_at, zone),
                    Text(last.status, style=style),
                    f"{last.inserted:,}",
                    f"{last.updated:,}",
                    f"{last.unchanged:,}",
                    f"{last.deleted:,}",
                    f"[red]{nq:,}[/]" if nq else "0",
                )
        console.print(table)
        recent = conn.execute(
            select(q.connector, q.stream, func.coalesce(q.path, q.source_id), q.reason)
            .where(q.resolved_at.is_(None))
            .order_by(q.id.desc())
            .limit(10)
        ).all()
    if recent:
        qt = Table(title="Latest quarantined records", title_justify="left")
        for col in ("source/stream", "file or id", "reason"):
            qt.add_column(col)
        for c, s, sid, reason in recent:
            qt.add_row(Text(f"{c}/{s}"), Text(str(sid or "")), Text(reason[:120]))
        console.print(qt)
    console.print(entity_table(ws))
