"""``kizuna crm``: write the store back to a CRM (the ``writeback:`` of a CRM source).

``kizuna crm push sfdc --dry-run`` shows what would change, record counts per object, without
writing; without ``--dry-run`` it writes only the differences and reports failed records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import DataTable as Table
from flows.cli.common import WorkspaceOpt, err_console, esc, fail, make_console
from kizuna.errors import KizunaError

crm_app = typer.Typer(help="Write Kizuna's fields back to Salesforce, HubSpot or kintone.")
console = make_console()


@crm_app.command()
def push(
    source: Annotated[str, typer.Argument(help="A CRM source with a `writeback:` section.")],
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report would-update counts; write nothing.")
    ] = False,
) -> None:
    """Update the CRM records a source read with the unified columns configured for them."""
    from flows.config import load
    from flows.runtime import engine_for
    from flows.sources.crm.writeback import push as do_push

    try:
        ws = load(workspace)
        results = do_push(ws, source, engine_for(ws.warehouse_url), dry_run=dry_run)
    except KizunaError as exc:
        raise fail(exc) from None
    tbl = Table(title=f"{source}: {'dry run' if dry_run else 'written'}")
    for col in ("target", "update", "unchanged", "skipped", "failed"):
        tbl.add_column(col, justify="left" if col == "target" else "right")
    failed = 0
    for res in results:
        counts = res.counts()
        upd = counts.get("would_update", counts.get("update", 0))
        tbl.add_row(
            res.target, str(upd), str(res.unchanged), str(res.skipped), str(len(res.failed))
        )
        failed += len(res.failed)
        for o in res.failed[:20]:
            err_console.print(f"  {esc(res.target)} {esc(o.key)}: {esc(o.error)}")
    console.print(tbl)
    raise typer.Exit(1 if failed else 0)
