"""``kizuna sources``: see what a source's mapping does with its data, and read it again.

``discover`` reads only what it must (a spreadsheet's header row, a Singer tap's catalog, a
dlt source's first records) and writes nothing, so an
admin can edit ``columns:`` and look again before syncing. ``reset`` forgets a stream's cursor
and stored row hashes, never its rows: the next sync re-reads and re-applies everything while
lineage, identity decisions and consent stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from flows.cli.common import WorkspaceOpt, esc, guard, make_console
from flows.workspace import Workspace

sources_app = typer.Typer(
    help="See how each source's fields map, and re-read a source from scratch.",
    no_args_is_help=True,
)
console = make_console()

_ORIGIN_STYLE = {"configured": "cyan", "built-in": "green", "unmapped": "yellow"}


@dataclass
class StreamView:
    """One stream's fields as the mapping sees them."""

    source: str
    stream: str
    how: str
    uses: list[Any] = field(default_factory=list)
    note: str = ""
    columns_at: str = ""
    """Where the workspace maps this stream's fields (``sources.<name>.columns`` if empty)."""

    @property
    def unmapped(self) -> list[str]:
        return [u.header for u in self.uses if u.origin == "unmapped"]


def discover(ws: Workspace, name: str) -> list[StreamView]:
    """Per stream: the headers or fields found and where each goes, without syncing."""
    from connectors.files import spreadsheet as sheet
    from flows.sources import registry
    from mappings.spreadsheet import headers

    cfg = registry.source_config(ws, name)
    if cfg.type == "spreadsheet":
        c: Any = cfg
        from flows.storage import fetch_source

        found, how = sheet.header(
            fetch_source(ws, c.path), encoding=c.encoding, delimiter=c.delimiter, sheet=c.sheet
        )
        uses = headers.explain(found, dict(c.columns), c.key)
        return [StreamView(name, c.stream, f"{Path(c.path).name}: {how}", uses)]
    hook = getattr(registry.module_of(cfg), "discover", None)
    if callable(hook):  # the type finds its own fields (a tap's catalog, a dlt source)
        return [
            StreamView(name, f.stream, f.how, list(f.uses), columns_at=f.columns_at)
            for f in hook(name, cfg, ws)
        ]
    views = []
    field_maps = _field_maps(cfg.model_dump())
    for spec in registry.streams(ws, name):
        note = f"mapped by the built-in {cfg.type} mapping"
        view = StreamView(name, spec.stream, note)
        for path, fm in field_maps:
            if not path or path in spec.stream or spec.stream in path:
                view.uses += [_Use(src, dst) for dst, src in fm.items()]
        views.append(view)
    return views


@dataclass(frozen=True)
class _Use:
    header: str
    target: str
    origin: str = "configured"


def _field_maps(data: Any, path: str = "") -> list[tuple[str, dict[str, str]]]:
    """Every ``field_map:`` in a source section (CRM objects and apps), with where it sits."""
    out: list[tuple[str, dict[str, str]]] = []
    if isinstance(data, dict):
        for k, v in data.items():
            if k == "field_map" and isinstance(v, dict):
                out.append((path, {str(a): str(b) for a, b in v.items()}))
            else:
                out += _field_maps(v, k if isinstance(v, dict) else path)
    return out


def unmapped_lines(ws: Workspace, names: list[str]) -> list[str]:
    """For a sync summary: each spreadsheet stream's headers no mapping claimed."""
    lines = []
    for name in names:
        try:
            views = discover(ws, name) if ws.sources[name].get("type") == "spreadsheet" else []
        except Exception:  # the sync already reported why this source cannot be read
            continue
        for v in views:
            if v.unmapped:
                lines.append(
                    f"{esc(v.source)}/{esc(v.stream)}: unmapped headers (kept as attributes): "
                    + ", ".join(esc(h) for h in v.unmapped)
                    + f" — map them under sources.{esc(v.source)}.columns"
                )
    return lines


def horizon_lines(ws: Workspace, names: list[str]) -> list[str]:
    """For a sync summary: the window each calendar stream expands recurring meetings in
    (dates in the company's zone) and how many series have older occurrences it left out
    (each is a note in ``kizuna quarantine``), so the history horizon is never silent."""
    from sqlalchemy import func, select

    from flows.runtime import engine_for
    from warehouse import schema as t

    calendars = [n for n in names if ws.sources[n].get("type") in ("ics", "caldav")]
    if not calendars:
        return []
    st, q = t.SyncState, t.Quarantine
    lines = []
    with engine_for(ws.warehouse_url).connect() as conn:
        cut = dict(
            conn.execute(
                select(q.connector, func.count())
                .where(
                    q.connector.in_(calendars),
                    q.resolved_at.is_(None),
                    q.reason.contains("history horizon"),
                )
                .group_by(q.connector)
            ).all()
        )
        for name, stream, cursor in conn.execute(
            select(st.connector, st.stream, st.cursor).where(st.connector.in_(calendars))
        ):
            window = cursor.get("window") if isinstance(cursor, dict) else None
            if not window or len(window) != 2:
                continue
            line = (
                f"{esc(name)}/{esc(stream)}: recurring meetings expanded from {esc(window[0])} "
                f"to {esc(window[1])} ({esc(ws.company.time_zone)})"
            )
            if cut.get(name):
                line += (
                    f"; {cut[name]:,} series have older occurrences not stored — raise "
                    f"sources.{esc(name)}.expand_past_days to keep them "
                    f"(kizuna quarantine {esc(name)})"
                )
            lines.append(line)
    return lines


@sources_app.command("discover")
def discover_cmd(
    source: Annotated[str, typer.Argument(help="A source name from the workspace.")],
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """Show, per stream, the headers or fields found and what each maps to (nothing is synced)."""
    from flows import config

    ws = guard(lambda: config.load(workspace))
    views = guard(lambda: discover(ws, source))
    for v in views:
        console.print(f"[bold]{esc(v.source)}/{esc(v.stream)}[/] — {esc(v.how)}")
        table = Table()
        for col in ("header / field", "maps to", "decided by"):
            table.add_column(col)
        for u in v.uses:
            target = "ignored" if u.target == "ignore" else u.target
            if u.origin == "unmapped":
                target = f"{target} (not recognised)"
            table.add_row(
                Text(u.header), Text(target), Text(u.origin, style=_ORIGIN_STYLE[u.origin])
            )
        console.print(table)
        if v.unmapped:
            console.print(
                f"{len(v.unmapped)} header(s) not recognised; map them under "
                f"`{esc(v.columns_at or f'sources.{source}.columns')}` "
                f"(e.g. `{esc(v.unmapped[0])}: person.title`)."
            )


@sources_app.command("reset")
def reset_cmd(
    source: Annotated[str, typer.Argument(help="A source name from the workspace.")],
    stream: Annotated[
        str | None, typer.Argument(help="One stream; every stream if omitted.")
    ] = None,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """Re-read a source from scratch on the next sync; rows, lineage, identity and consent stay."""
    from flows import config

    ws = guard(lambda: config.load(workspace))
    for s, n in guard(lambda: reset(ws, [source], stream)):
        console.print(
            f"{esc(source)}/{esc(s)}: cursor cleared, {n:,} stored rows will be re-applied "
            "on the next `kizuna sync`."
        )


def reset(ws: Workspace, names: list[str], stream: str | None = None) -> list[tuple[str, int]]:
    """Forget the cursors and stored hashes of these sources' streams, in one transaction."""
    from flows.runtime import engine_for
    from flows.sources import registry
    from kizuna.errors import ConfigError
    from warehouse.db import write_transaction
    from warehouse.state import StreamKey, reset_stream

    todo: list[tuple[str, str]] = []
    for name in names:
        streams = [s.stream for s in registry.streams(ws, name)]
        if stream is not None and stream not in streams:
            raise ConfigError(
                f"source {name!r} has no stream {stream!r}",
                file=str(ws.path),
                field=f"sources.{name}",
                fix=f"use one of: {', '.join(streams)}",
            )
        todo += [(name, s) for s in streams if stream in (None, s)]
    done = []
    with write_transaction(engine_for(ws.warehouse_url)) as conn:
        for name, s in todo:
            done.append((s, reset_stream(conn, StreamKey(name, s))))
    return done
