"""``kizuna export``: the crosswalk and the golden records as CSV or JSON lines.

Ids are the public, rebuild-stable ones (``P-…`` customers, ``O-…`` companies): the same
files synced into a fresh warehouse, in any order, give the same ids.
"""

from __future__ import annotations

import csv
import json
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from flows.cli.common import WorkspaceOpt, guard
from flows.cli.staff.viewer import AsOpt, viewer

export_app = typer.Typer(
    help="Write what the store holds (the crosswalk, golden customers and companies, activities),"
    " to audit it or to move it elsewhere.",
    no_args_is_help=True,
)


class Format(StrEnum):
    csv = "csv"
    jsonl = "jsonl"


FormatOpt = Annotated[
    Format, typer.Option("--format", "-f", help="csv (UTF-8 with BOM, opens in Excel) or jsonl.")
]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", "-o", help="File to write (default: standard output).")
]


def _printable(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """On a terminal, data never drives it: control and bidi characters are dropped."""
    for row in rows:
        yield {
            k: "".join(c for c in v if unicodedata.category(c) not in ("Cc", "Cf"))
            if isinstance(v, str)
            else v
            for k, v in row.items()
        }


def _write(rows: Iterator[dict[str, Any]], fields: Sequence[str], fmt: Format, out: IO[str]) -> int:
    n = 0
    if fmt is Format.csv:
        w = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\r\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: "" if row.get(k) is None else row[k] for k in fields})
            n += 1
    else:
        for row in rows:
            out.write(json.dumps({k: row.get(k) for k in fields}, ensure_ascii=False, default=str))
            out.write("\n")
            n += 1
    return n


def _export(
    workspace: Path,
    fmt: Format,
    output: Path | None,
    fields: Sequence[str],
    produce: Callable[[Any, Any], Iterator[dict[str, Any]]],
) -> None:
    from flows import config
    from flows.identity.config import settings_for
    from flows.runtime import engine_for

    def run() -> int:
        ws = config.load(workspace)
        _, rules = settings_for(ws)
        engine = engine_for(ws.warehouse_url)
        with engine.connect() as conn:
            if output is None:
                return _write(_printable(produce(conn, rules)), fields, fmt, sys.stdout)
            enc = "utf-8-sig" if fmt is Format.csv else "utf-8"
            with output.open("w", encoding=enc, newline="") as f:
                return _write(_counted(produce(conn, rules), output.name), fields, fmt, f)

    if output is None:  # the rows go to the terminal or a pipe: no bars among them
        guard(run)
        return
    from flows.cli.common import err_console
    from flows.cli.summary import showing_progress

    with showing_progress(err_console):
        n = guard(run)
    typer.echo(f"{n} rows → {output}", err=True)


def _counted(rows: Iterator[dict[str, Any]], label: str) -> Iterator[dict[str, Any]]:
    """The rows, counted on a progress bar as they are written (the total is not known
    before: counting first would read everything twice)."""
    from flows import progress

    tick = progress.start(f"export → {label}", None)
    if tick is None:
        yield from rows
        return
    n = 0
    for row in rows:
        yield row
        n += 1
        if n % EVERY == 0:
            tick(EVERY)
    tick(n % EVERY)


EVERY = 500


@export_app.command("crosswalk")
def crosswalk(
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
    fmt: FormatOpt = Format.csv,
    output: OutputOpt = None,
    as_user: AsOpt = None,
) -> None:
    """One line per source record: connector, stream, source id, file and data row, and the
    customer and company it resolved to. Audit merges with it; load the ids elsewhere."""
    from warehouse.access import exports
    from warehouse.identity import crosswalk as cw

    def produce(conn: Any, _rules: Any) -> Iterator[dict[str, Any]]:
        return exports.crosswalk(conn, viewer(conn, as_user))

    _export(workspace, fmt, output, cw.FIELDS, produce)


def activities_scope(warehouse_url: str, as_user: str | None) -> Any:
    """The scope condition on activities for ``--as`` (None: everything)."""
    if as_user is None:
        return None
    from flows.runtime import engine_for
    from warehouse.access import scope

    def viewer() -> scope.Viewer:
        with engine_for(warehouse_url).connect() as conn:
            return scope.viewer_by_email(conn, as_user)

    return scope.activities(guard(viewer))


@export_app.command("customers")
def customers(
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
    fmt: FormatOpt = Format.csv,
    output: OutputOpt = None,
    as_user: AsOpt = None,
) -> None:
    """One golden record per customer (survivorship rules from ``identity:``)."""
    from warehouse.access import scope
    from warehouse.identity import golden_export as ge

    def produce(conn: Any, rules: Any) -> Iterator[dict[str, Any]]:
        visible = None
        if as_user is not None:
            visible = scope.visible_records(conn, scope.viewer_by_email(conn, as_user))
        return ge.customers(conn, rules, visible)

    _export(workspace, fmt, output, ge.CUSTOMER_FIELDS, produce)


@export_app.command("organizations")
def organizations(
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
    fmt: FormatOpt = Format.csv,
    output: OutputOpt = None,
    as_user: AsOpt = None,
) -> None:
    """One golden record per company."""
    from warehouse.access import exports
    from warehouse.identity import golden_export as ge

    def produce(conn: Any, _rules: Any) -> Iterator[dict[str, Any]]:
        return exports.organizations(conn, viewer(conn, as_user))

    _export(workspace, fmt, output, ge.ORG_FIELDS, produce)
