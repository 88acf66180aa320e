"""``kizuna report``: the 日報 drafts for sales staff and the pipeline page for managers.

These read the warehouse and write files directly (a second, not a Prefect start-up); the
scheduled runs use the flows in ``flows.reports.flow``, which call the same functions.
"""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Annotated, Any

import typer

from flows.cli.common import DataTable as Table
from flows.cli.common import WorkspaceOpt, err_console, esc, guard, make_console
from flows.cli.staff.viewer import AsOpt, viewer
from kizuna.errors import ConfigError, KizunaError

report_app = typer.Typer(
    help="Daily report (日報) drafts for sales staff and the pipeline page for managers.",
    no_args_is_help=True,
)
console = make_console()
SHOW_AT_MOST = 3
"""Print the drafts themselves up to this many; past it, a table of them."""


def _load(workspace: Path) -> Any:
    from flows import config
    from flows.reports.config import reports_config

    ws = config.load(workspace)
    reports_config(ws)  # a bad reports: section fails here, before any work
    return ws


def _scope_owners(ws: Any, as_user: str | None) -> frozenset[int] | None:
    """Whose reports and deals ``--as`` may read (None: everyone's, the default)."""
    if as_user is None:
        return None
    from flows.runtime import engine_for

    with engine_for(ws.warehouse_url).connect() as conn:
        return viewer(conn, as_user).owners


_COUNTS = (
    ("meetings", "meetings"),
    ("mail_sent", "sent"),
    ("mail_received", "received"),
    ("mail_internal", "internal"),
    ("deals_touched", "deals"),
    ("follow_ups", "follow"),
)


def _drafts_table(rows: list[dict[str, Any]]) -> Table:
    tbl = Table(title="日報 drafts")
    tbl.add_column("staff", no_wrap=True)
    tbl.add_column("date", no_wrap=True)
    for _, header in _COUNTS:
        tbl.add_column(header, justify="right")
    tbl.add_column("status")
    for r in rows:
        tbl.add_row(r["staff"], r["date"], *(str(r[k]) for k, _ in _COUNTS), r["status"])
    return tbl


@report_app.command("daily")
def daily(
    staff: Annotated[
        str | None, typer.Option("--staff", help="Only this rep (their mail address).")
    ] = None,
    day: Annotated[
        str | None,
        typer.Option(
            "--date",
            help="Day in the company's time zone (YYYY-MM-DD); default each rep's latest day "
            "with activity.",
        ),
    ] = None,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
    as_user: AsOpt = None,
) -> None:
    """Draft the 日報 of every rep with activity (or one rep) and print it."""
    from flows.reports.run import draft_batch, plan

    def run() -> list[Any]:
        ws = _load(workspace)
        owners = _scope_owners(ws, as_user)
        pairs = plan(ws, day, staff_email=staff)
        mine = [x for x in pairs if owners is None or x[0] in owners]
        if staff and pairs and not mine:
            raise ConfigError(
                f"{staff}'s 日報 is outside what {as_user} may see",
                field="--staff",
                fix="leave out --as (everything) or use an account whose scope covers them",
            )
        return draft_batch(ws, mine)

    written = guard(run)
    if not written:
        console.print("No activity found for that day: nothing to draft.")
        return
    if len(written) <= SHOW_AT_MOST:
        from rich.markdown import Markdown

        for w in written:
            console.rule(
                f"{w.staff} · {w.date}" + (" (submitted)" if w.status != "drafted" else "")
            )
            console.print(Markdown(w.markdown))
    else:
        console.print(_drafts_table([w.row() for w in written]))
    folders = sorted({str(w.md_path.parent) for w in written})
    console.print(
        f"\nWrote {len(written)} draft(s) to [bold]{esc(', '.join(folders))}[/] (.md and .html)"
    )


@report_app.command("submit")
def submit(
    staff: Annotated[str, typer.Option("--staff", help="The rep's mail address.")],
    day: Annotated[str, typer.Option("--date", help="The report's day (YYYY-MM-DD).")],
    file: Annotated[
        Path | None,
        typer.Option("--file", help="The edited Markdown (with 所感) to store as submitted."),
    ] = None,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """Mark a 日報 submitted: from then on regeneration keeps it as it is."""
    from flows.reports.run import parse_date
    from flows.runtime import engine_for
    from warehouse.db import write_transaction
    from warehouse.reporting.drafts import submit as submit_report
    from warehouse.reporting.staff import staff_by_email
    from warehouse.state import now

    def run() -> bool:
        ws = _load(workspace)
        d = parse_date(day, "--date")
        body = file.read_text(encoding="utf-8") if file else None
        engine = engine_for(ws.warehouse_url)
        with write_transaction(engine) as conn:
            who = staff_by_email(conn, staff)
            if who is None:
                raise ConfigError(f"no staff user {staff!r}", field="--staff")
            return submit_report(conn, who.id, d, now(), body)

    if not guard(run):
        err_console.print("No draft for that rep and day; run `kizuna report daily` first.")
        raise typer.Exit(1)
    console.print(f"Submitted the 日報 of {esc(staff)} for {day}.")


def print_pipeline(p: Any, path: PurePath) -> None:
    from flows.reports.render import pct, yen

    tbl = Table(title=f"Pipeline · {p.today.isoformat()}")
    for col in ("stage", "deals", "amount", "weighted", "moved on", "avg days"):
        tbl.add_column(col, justify="left" if col == "stage" else "right")
    for s in p.stages:
        days = "—" if s.avg_days is None else f"{s.avg_days:.1f}"
        tbl.add_row(s.stage, str(s.count), yen(s.amount), yen(s.weighted), pct(s.conversion), days)
    tbl.add_row("[bold]total[/]", str(p.open_count), yen(p.open_amount), yen(p.weighted), "", "")
    console.print(tbl)
    console.print(
        f"Closing this month: {p.closing_count} ({yen(p.closing_amount)}) · "
        f"won this month: {p.won_count} ({yen(p.won_amount)}) · "
        f"stale ({p.stale_days}+ days): {p.stale_count} · overdue: {p.overdue_count}"
    )
    console.print(f"Pipeline page: [bold]{esc(path)}[/]")


@report_app.command("pipeline")
def pipeline_cmd(
    open_: Annotated[bool, typer.Option("--open", help="Open the page in a browser.")] = False,
    team: Annotated[
        str | None, typer.Option("--team", help="Only the deals this team's members own.")
    ] = None,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
    as_user: AsOpt = None,
) -> None:
    """Write the pipeline page (reports/pipeline.html) and print its summary."""
    from flows.reports.run import write_pipeline

    def run() -> Any:
        ws = _load(workspace)
        return write_pipeline(ws, team, _scope_owners(ws, as_user), as_user)

    path, p = guard(run)
    print_pipeline(p, path)
    if open_ and isinstance(path, Path):  # a page under KIZUNA_STORAGE_URL opens from there
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


def demo_reports(ws_file: Path) -> None:
    """After the demo's sync: the pipeline page and each rep's latest 日報 up to yesterday."""
    from flows.reports.run import draft_batch, plan, write_pipeline, yesterday

    try:
        ws = _load(ws_file)
        path, p = write_pipeline(ws)
        written = draft_batch(ws, plan(ws, up_to=yesterday(ws)))
    except KizunaError as exc:
        err_console.print(f"[bold red]reports failed:[/] {esc(exc)}", soft_wrap=True)
        return
    print_pipeline(p, path)
    if written:
        console.print(_drafts_table([w.row() for w in written]))
        folders = sorted({str(w.md_path.parent) for w in written})
        console.print(f"日報 drafts: [bold]{esc(', '.join(folders))}[/]")
        first = written[0]
        console.print(
            f"Try: [bold]kizuna report daily -w {esc(ws_file)} --staff {esc(first.staff)} "
            f"--date {first.date}[/]"
        )
