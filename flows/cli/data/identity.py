"""CLI for identity resolution: ``kizuna customer``, ``kizuna review``, ``kizuna identity``.

Reading and hand edits go straight to the warehouse (no Prefect); ``identity resolve`` runs
the Prefect flow so a manual run looks like a scheduled one in the UI.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from flows.cli.common import DataTable as Table
from flows.cli.common import esc, guard, local_time, make_console, zone_label
from kizuna.errors import ConfigError, KizunaError

customer_app = typer.Typer(help="Look up a customer across every source.", no_args_is_help=True)
review_app = typer.Typer(help="Decide pairs the resolver was unsure about.", no_args_is_help=True)
identity_app = typer.Typer(help="Run, split and pin identity resolution.", no_args_is_help=True)

console = make_console()
err_console = make_console(stderr=True)
T = TypeVar("T")

WorkspaceOpt = Annotated[
    Path,
    typer.Option("--workspace", "-w", help="Workspace file.", envvar="KIZUNA_WORKSPACE"),
]


def _with_conn(workspace: Path, fn: Callable[[Any, Any], T], write: bool = False) -> T:
    """Open the workspace's warehouse and run ``fn(conn, rules)``; errors end the command."""
    from flows import config
    from flows.identity.config import settings_for
    from flows.runtime import engine_for

    try:
        ws = config.load(workspace)
        _, rules = settings_for(ws)
        engine = engine_for(ws.warehouse_url)
        with engine.begin() if write else engine.connect() as conn:
            return fn(conn, rules)
    except KizunaError as exc:
        err_console.print(f"[bold red]error:[/] {esc(exc)}", soft_wrap=True)
        raise typer.Exit(2 if isinstance(exc, ConfigError) else 1) from None


def _fmt(v: Any, zone: str = "UTC") -> str:
    """A value for a table cell; a time in the company's zone (stored times are UTC)."""
    from datetime import datetime

    if v is None:
        return ""
    if isinstance(v, datetime):
        return local_time(v, zone)
    if isinstance(v, dict):
        return ", ".join(f"{k}={val}" for k, val in v.items())
    return str(v)


@customer_app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="An email address or a customer/person id.")],
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """The 360 view: golden fields with their sources, contacts, lineage, activity, deals."""
    from warehouse.identity import admin as adm

    view = _with_conn(
        workspace, lambda conn, rules: adm.customer_360(conn, adm.find_customer(conn, ref), rules)
    )
    if as_json:
        from dataclasses import asdict

        console.print_json(json.dumps(asdict(view), default=str, ensure_ascii=False))
        return
    from flows import config

    zone = config.load(workspace).company.time_zone
    when = f"({zone_label(zone)})"
    title = f"Customer {view.public_id or view.id}" + (f" (#{view.id})" if view.public_id else "")
    if len(view.members) > 1:
        title += f" · {len(view.members)} records ({', '.join(map(str, view.members))})"
    g = Table(title=title, title_justify="left")
    for col in ("field", "value", "source", "record", "chosen by"):
        g.add_column(col)
    for fld, cell in view.golden.items():
        g.add_row(fld, _fmt(cell["value"]), cell["source"], str(cell["record_id"]), cell["rule"])
    console.print(g)
    c = Table(title="Contacts", title_justify="left")
    c.add_column("kind")
    c.add_column("value")
    c.add_column("record")
    for e, pid in view.emails:
        c.add_row("email", e, str(pid))
    for ph, pid in view.phones:
        c.add_row("phone", ph, str(pid))
    console.print(c)
    if view.organization:
        o = view.organization
        aka = o.get("also_known_as") or []
        console.print(
            f"[bold]Organization[/] {esc(o['name'])} · {esc(o.get('domain') or '-')} · "
            f"法人番号 {esc(o.get('corporate_number') or '-')} (id {o['id']})"
            + (f" · also {esc(', '.join(aka))}" if aka else "")
        )
    s = Table(title="Sources (lineage)", title_justify="left")
    for col in (
        "record",
        "connector/stream",
        "source id",
        f"first seen {when}",
        f"last seen {when}",
    ):
        s.add_column(col)
    for r in view.sources:
        s.add_row(
            str(r["entity_id"]),
            f"{r['connector']}/{r['stream']}",
            r["source_id"],
            _fmt(r["first_seen"], zone),
            _fmt(r["last_seen"], zone),
        )
    console.print(s)
    if view.activities:
        a = Table(title="Recent activities", title_justify="left")
        for col in (f"when {when}", "kind", "direction", "subject"):
            a.add_column(col)
        for r in view.activities:
            a.add_row(
                _fmt(r["occurred_at"], zone), r["kind"], _fmt(r["direction"]), _fmt(r["subject"])
            )
        console.print(a)
    if view.deals:
        d = Table(title="Deals", title_justify="left")
        for col in ("id", "name", "stage", "amount", "status", "close"):
            d.add_column(col)
        for r in view.deals:
            amount = f"{r['amount']} {r['currency']}" if r["amount"] is not None else ""
            d.add_row(
                str(r["id"]),
                r["name"],
                _fmt(r["stage"]),
                amount,
                r["status"],
                _fmt(r["expected_close"]),
            )
        console.print(d)
    if view.merges or view.aliases:
        m = Table(title="Merge history and evidence", title_justify="left")
        for col in ("match", "pair", "method", "score", "fields", "decision"):
            m.add_column(col)
        for r in view.merges:
            m.add_row(
                str(r["id"]),
                f"{r['a_id']} ↔ {r['b_id']}",
                r["method"],
                f"{r['score']:.3f}",
                _fmt(r["fields"]),
                r["decision"] + (f" by {r['decided_by']}" if r["decided_by"] else ""),
            )
        console.print(m)
        if view.aliases:
            console.print(f"Merged ids that resolve here: {', '.join(map(str, view.aliases))}")


@review_app.command("list")
def review_list(
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
    limit: Annotated[int, typer.Option(help="How many pairs to show.")] = 50,
) -> None:
    """Pairs scored between the review and merge thresholds, most likely first."""
    from warehouse.identity import admin as adm

    rows = _with_conn(workspace, lambda conn, _: adm.review_queue(conn, limit))
    if not rows:
        console.print("The review queue is empty.")
        return
    tab = Table(title=f"Review queue (top {len(rows)})", title_justify="left")
    for col in ("match", "score", "A", "B", "for (bits)", "against (bits)"):
        tab.add_column(col)
    for r in rows:
        pro, con = adm.for_against(r["fields"] or {})
        tab.add_row(
            str(r["id"]),
            f"{r['score']:.3f}",
            f"{r['a_id']}: {_fmt(r['a_name'])} {_fmt(r['a_email'])}",  # plain text (DataTable)
            f"{r['b_id']}: {_fmt(r['b_name'])} {_fmt(r['b_email'])}",
            pro,
            con,
        )
    console.print(tab)
    console.print("Decide with `kizuna review accept <match>` or `kizuna review reject <match>`.")


ByOpt = Annotated[str | None, typer.Option("--by", help="Who decided (default: your login).")]


@review_app.command("accept")
def review_accept(
    match_id: Annotated[int, typer.Argument(help="Match id from `kizuna review list`.")],
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
    by: ByOpt = None,
) -> None:
    """Merge the pair: they are one customer from now on."""
    from warehouse.identity import admin as adm

    who = by or getpass.getuser()
    cid = _with_conn(
        workspace, lambda conn, rules: adm.accept(conn, match_id, who, rules), write=True
    )
    console.print(f"Accepted match {match_id}: now customer {cid}.")


@review_app.command("reject")
def review_reject(
    match_id: Annotated[int, typer.Argument(help="Match id from `kizuna review list`.")],
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
    by: ByOpt = None,
) -> None:
    """Keep the pair apart, now and in every later run."""
    from warehouse.identity import admin as adm

    who = by or getpass.getuser()
    _with_conn(workspace, lambda conn, rules: adm.reject(conn, match_id, who, rules), write=True)
    console.print(f"Rejected match {match_id}: the two stay separate.")


@identity_app.command("split")
def identity_split(
    customer: Annotated[int, typer.Argument(help="The customer (cluster) id to split.")],
    records: Annotated[list[int], typer.Argument(help="Member record ids to move out.")],
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
    note: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
) -> None:
    """Move records out of a customer; later runs never join them back."""
    from warehouse.identity import admin as adm

    new = _with_conn(
        workspace,
        lambda conn, rules: adm.split(
            conn, adm.find_customer(conn, str(customer)), records, note, rules
        ),
        write=True,
    )
    console.print(
        f"Split {esc(', '.join(map(str, records)))} out of customer {esc(customer)}: now {new}."
    )


@identity_app.command("never-link")
def identity_never_link(
    a: Annotated[int, typer.Argument(help="A person record id.")],
    b: Annotated[int, typer.Argument(help="Another person record id.")],
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
    note: Annotated[str | None, typer.Option(help="Why, for the record.")] = None,
) -> None:
    """Pin two records as never the same person (undoes a merge that joined them)."""
    from warehouse.identity import admin as adm

    _with_conn(workspace, lambda conn, rules: adm.never_link(conn, a, b, note, rules), write=True)
    console.print(f"Records {a} and {b} will never be linked.")


@identity_app.command("resolve")
def identity_resolve(
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
    full: Annotated[bool, typer.Option(help="Recompute every pair from scratch.")] = False,
) -> None:
    """Run identity resolution now (incremental unless --full)."""
    from flows import config
    from flows.runtime import quiet_prefect

    try:
        ws = config.load(workspace)
    except KizunaError as exc:
        err_console.print(f"[bold red]error:[/] {esc(exc)}", soft_wrap=True)
        raise typer.Exit(2) from None
    quiet_prefect(ws.root / ".kizuna" / "prefect")
    from flows.cli.summary import showing_progress
    from flows.identity.resolve import resolve
    from flows.ops.launch import run_flow

    with showing_progress(console):
        result = guard(
            lambda: run_flow(resolve, ws.warehouse_url, workspace_file=str(ws.path), full=full)
        )
    tab = Table(title=f"Identity resolution ({result['mode']})", title_justify="left")
    tab.add_column("measure")
    tab.add_column("value", justify="right")
    for k in (
        "records",
        "keys",
        "pairs",
        "oversized_blocks",
        "merges",
        "reviews",
        "clusters_changed",
        "seconds",
    ):
        tab.add_row(k, str(result[k]))
    console.print(tab)
