"""``kizuna quote``: 見積書 from deals — issue, re-issue and list.

A quote takes its customer and lines from the warehouse (sync the deals, products and
line-items sheets first) and its seller, number series and terms from the ``quotes:``
section of the workspace file.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from flows.cli.common import DataTable, WorkspaceOpt, err_console, esc, guard, make_console
from kizuna.errors import ConfigError, KizunaError

quote_app = typer.Typer(
    help="見積書 (quotes) from deals: numbered, taxed per rate, rendered to HTML and PDF.",
    no_args_is_help=True,
)
console = make_console()

DateOpt = Annotated[
    str | None,
    typer.Option("--date", help="Issue date (YYYY-MM-DD); default today in the company's zone."),
]


def _day(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"--date {text!r} is not a date", fix="write it as 2026-04-01") from None


def _print(doc: dict[str, Any]) -> None:
    from warehouse.quotes.tax import yen

    rev = f" (第{doc['revision']}版)" if doc["revision"] > 1 else ""
    c = doc["customer"]
    to = " ".join(x for x in (c["organization"], c["person"]) if x)
    console.print(
        f"[bold]{esc(doc['number'])}{rev}[/] {esc(doc['subject'])} → {esc(to)} {c['honorific']}"
    )
    tbl = DataTable(show_header=True)
    tbl.add_column("")
    tbl.add_column("対象額", justify="right")
    tbl.add_column("消費税", justify="right")
    for rt in doc["by_rate"]:
        label = f"{rt['rate']}%" + (" 軽減" if rt["reduced"] else "")
        tbl.add_row(label, yen(int(rt["base"])), yen(int(rt["tax"])))
    tbl.add_row("合計", yen(int(doc["subtotal"])), yen(int(doc["tax"])))
    console.print(tbl)
    console.print(f"合計 (税込) [bold]{yen(int(doc['total']))}[/], 有効期限 {doc['valid_until']}")
    for kind, path in doc.get("files", {}).items():
        console.print(f"{kind}: {esc(path)}")


@quote_app.command("create")
def create(
    deal: Annotated[str, typer.Argument(help="The deal: its id or its exact name.")],
    day: DateOpt = None,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """Issue a new quote for a deal: next number, totals per tax rate, HTML and PDF."""
    from flows import config
    from flows.quotes import issue

    doc = guard(lambda: issue.create(config.load(workspace), deal, _day(day)))
    _print(doc)


@quote_app.command("reissue")
def reissue(
    number: Annotated[str, typer.Argument(help="The quote number, e.g. Q-2026-0001.")],
    day: DateOpt = None,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """Issue the next revision of a quote from its deal's current lines (old ones are kept)."""
    from flows import config
    from flows.quotes import issue

    doc = guard(lambda: issue.reissue(config.load(workspace), number, _day(day)))
    _print(doc)


@quote_app.command("list")
def list_quotes(
    deal: Annotated[str | None, typer.Option("--deal", help="Only this deal (id or name).")] = None,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """Every issued quote revision, newest first."""
    from flows import config
    from warehouse.db import open_warehouse
    from warehouse.quotes import documents
    from warehouse.quotes.tax import yen

    def run() -> list[dict[str, Any]]:
        ws = config.load(workspace)
        with open_warehouse(ws.warehouse_url).connect() as conn:
            deal_id = documents.find_deal(conn, deal) if deal else None
            return documents.history(conn, deal_id)

    rows = guard(run)
    if not rows:
        console.print("No quotes yet. Issue one with `kizuna quote create <deal>`.")
        return
    tbl = DataTable(title="見積書")
    for col in ("number", "rev", "issued", "valid until", "deal", "total", "pdf"):
        tbl.add_column(col, justify="right" if col in ("rev", "total") else "left")
    for r in rows:
        tbl.add_row(
            r["number"],
            str(r["revision"]),
            str(r["issue_date"]),
            str(r["valid_until"]),
            f"{r['deal_id']} {r['deal']}",
            yen(r["total"]),
            r["files"].get("pdf", ""),
        )
    console.print(tbl)


@quote_app.command("push")
def push(
    number: Annotated[str, typer.Argument(help="The quote number, e.g. Q-2026-0001.")],
    to: Annotated[str, typer.Option("--to", help="The CRM source its deal came from.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read the CRM and report what would change.")
    ] = False,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """Write the quote's latest revision to Salesforce (Quote) or HubSpot (quote) by its number."""
    from flows import config
    from flows.quotes.push import push as do_push

    results = guard(lambda: do_push(config.load(workspace), number, to, dry_run=dry_run))
    tbl = DataTable(title=f"{number} → {to}: {'dry run' if dry_run else 'written'}")
    for col in ("target", "create", "update", "delete", "unchanged", "failed"):
        tbl.add_column(col, justify="left" if col == "target" else "right")
    failed = 0
    for res in results:
        c = res.counts()
        p = "would_" if dry_run else ""
        tbl.add_row(
            res.target,
            *(str(c[f"{p}{a}"]) for a in ("create", "update", "delete")),
            str(res.unchanged),
            str(len(res.failed)),
        )
        failed += len(res.failed)
        for o in res.failed[:20]:
            err_console.print(f"  {esc(res.target)} {esc(o.key)}: {esc(o.error)}")
    console.print(tbl)
    raise typer.Exit(1 if failed else 0)


def demo_quote(ws_file: Path) -> None:
    """After the demo's sync: one 見積書 for a sample deal, and where its PDF is."""
    from flows.demo.quotes import QUOTE_DEAL
    from flows.demo.quotes import demo_quote as issue_demo_quote

    try:
        doc = issue_demo_quote(ws_file)
    except KizunaError as exc:
        err_console.print(f"[bold red]quote failed:[/] {esc(exc)}", soft_wrap=True)
        return
    if doc is None:
        err_console.print(f"quote: deal {QUOTE_DEAL} was not synced; no quote issued")
        return
    rev = f" (第{doc['revision']}版)" if doc["revision"] > 1 else ""
    console.print(
        f"見積書 [bold]{esc(doc['number'])}{rev}[/] for {esc(doc.get('subject') or doc['deal'])}: "
        f"[bold]{esc(doc['files'].get('pdf', ''))}[/]"
    )
    console.print(f"Try: [bold]kizuna quote reissue {esc(doc['number'])} -w {esc(ws_file)}[/]")
