"""``kizuna customer disclose`` / ``kizuna customer erase``: one customer's privacy request.

Disclose writes one readable JSON file (under ``privacy/`` in the workspace, owner-only) and
logs the request. Erase runs in three steps so a failure part-way can simply be run again:
read what is held, scrub the workspace's files, then remove the customer from the warehouse
in one transaction (and compact a SQLite file, so deleted rows do not linger in free pages).
After it, a sync that reads the customer's rows again holds them in quarantine with a reason
until they are removed at the source; the command says which source files still have them.
"""

from __future__ import annotations

import getpass
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flows.cli.common import DataTable, esc, fail, make_console
from kizuna.errors import ConfigError, KizunaError

if TYPE_CHECKING:  # types only: `kizuna --help` imports this module, not SQLAlchemy
    from sqlalchemy import Engine

    from flows.cli.privacy import files
    from flows.workspace import Workspace

console = make_console()
err_console = make_console(stderr=True)

WorkspaceOpt = Annotated[
    Path,
    typer.Option("--workspace", "-w", help="Workspace file.", envvar="KIZUNA_WORKSPACE"),
]
ByOpt = Annotated[
    str | None,
    typer.Option("--by", help="Who asked for it (kept with the request); default: your login."),
]
RefArg = Annotated[str, typer.Argument(help="The customer id (P-…), as `customer show` gives it.")]


def _open(workspace: Path) -> tuple[Workspace, Engine]:
    from flows import config
    from flows.runtime import engine_for

    ws = config.load(workspace)
    return ws, engine_for(ws.warehouse_url)


def _missing(ref: str) -> ConfigError:
    return ConfigError(
        f"no customer {ref!r}",
        fix="give the P-… id `kizuna customer show <address>` prints",
    )


def _by(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def disclose(
    ref: RefArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here (default: privacy/…json).")
    ] = None,
    by: ByOpt = None,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """Everything held about a customer, as one JSON file (個人情報保護法 開示)."""
    from flows.cli.privacy import files  # here: every other command starts without it
    from warehouse.db import write_transaction
    from warehouse.privacy import disclose as dis
    from warehouse.privacy import erase as era
    from warehouse.state import now

    try:
        ws, engine = _open(workspace)
        with write_transaction(engine) as conn:
            found = era.find(conn, ref)
            if found is None:
                raise _missing(ref)
            doc = dis.document(conn, found)
            doc["files"] = files.mentions(ws, found.values())
            counts = {k: len(v) for k, v in doc.items() if isinstance(v, list)}
            doc["request_id"] = dis.record_request(conn, found, _by(by), counts)
    except KizunaError as exc:
        raise fail(exc) from None
    path = output or files.disclosure_path(ws, found.customer_id, now().strftime("%Y%m%dT%H%M%SZ"))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=2, default=str)
        f.write("\n")
    shown = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
    console.print(f"Wrote [bold]{esc(path)}[/] ({esc(shown)}).")


def erase(
    ref: RefArg,
    by: ByOpt = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    anyway: Annotated[
        bool, typer.Option("--anyway", help="Erase what is linked now, even if unresolved.")
    ] = False,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """Remove a customer from every table and file (個人情報保護法 削除); keep only salted
    hashes of their addresses, so they are never mailed again."""
    from warehouse.db import write_transaction
    from warehouse.privacy import erase as era

    try:
        ws, engine = _open(workspace)
        with engine.connect() as conn:
            found = era.find(conn, ref)
            if found is None:
                raise _missing(ref)
            pending = era.unresolved(conn)
            if pending and not anyway:
                raise ConfigError(
                    f"{pending:,} records changed since identity resolution last ran: "
                    "some may be this customer's and would be left behind",
                    fix="run `kizuna identity resolve` first (or add --anyway)",
                )
            mids = era.message_ids(conn, found.record_ids)
        if not yes:
            typer.confirm(
                f"Erase customer {found.customer_id} ({len(found.record_ids)} records)? "
                "This cannot be undone",
                abort=True,
            )
        from flows.cli.privacy import files

        report = files.scan(ws, found.values(), mids, change=True)
        with write_transaction(engine) as conn:
            again = era.find(conn, ref)
            done = era.erase(conn, again or found, _by(by))
        compacted = compact(engine, [k.removesuffix(" (text)") for k in done.counts])
    except KizunaError as exc:
        raise fail(exc) from None
    _tell(done, report, compacted)


def compact(engine: Engine, tables: list[str]) -> bool:
    """Rewrite a SQLite file so erased rows are not left in its free pages or its WAL; on
    PostgreSQL, VACUUM the tables the erasure touched, so their dead row versions go now."""
    if engine.dialect.name == "postgresql":
        try:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for name in sorted(set(tables)):
                    conn.exec_driver_sql(f'VACUUM "{name}"')
            return True
        except Exception:  # not the tables' owner, or busy: the erasure stands
            return False
    if engine.dialect.name != "sqlite":
        return True
    engine.dispose()
    raw: Any = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("VACUUM")
        cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cur.close()
        return True
    except Exception:  # a sync holding the file: the erasure stands, the compaction waits
        return False
    finally:
        raw.close()


def _tell(done: Any, report: files.FileReport, compacted: bool) -> None:
    tbl = DataTable(title=f"Erased customer {done.customer_id} (request {done.request_id})")
    tbl.add_column("where")
    tbl.add_column("rows", justify="right")
    for name, n in sorted(done.counts.items()):
        tbl.add_row(name, f"{n:,}")
    tbl.add_row("files removed", str(len(report.removed)))
    tbl.add_row("files masked", str(len(report.edited)))
    console.print(tbl)
    if done.shared:
        console.print(
            f"{done.shared} address(es) another customer also gives (a team mailbox) were kept."
        )
    for rel in report.cannot_edit:
        console.print(f"[yellow]cannot edit[/] {esc(rel)}: remove it or the customer's data in it")
    if report.in_sources:
        console.print("Still in your sources (remove them there):")
        for rel in report.in_sources:
            console.print(f"  {esc(rel)}")
    console.print(
        "Until then every sync holds their rows back (`kizuna quarantine` lists them); "
        "their addresses stay on the suppression list as salted hashes."
    )
    if not compacted:
        console.print(
            "[yellow]The erasure is done, but the database could not be compacted now (in "
            "use): deleted rows may linger on disk until VACUUM runs (SQLite: `sqlite3 <file> "
            "VACUUM` when no sync runs; PostgreSQL: autovacuum).[/]"
        )
