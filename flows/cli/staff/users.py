"""``kizuna users`` (staff accounts for ``kizuna web``) and ``kizuna web`` (serve the app).

Passwords are read from a hidden prompt, or one line of standard input with
``--password-stdin`` (scripts, tests); never from an option, which would land in shell history
and the process list. Every change is written to the audit log with the operator's login.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from flows.cli.common import DataTable as Table
from flows.cli.common import esc, guard, make_console

users_app = typer.Typer(
    help="Staff accounts for `kizuna web`: add, set a role, reset a password.",
    no_args_is_help=True,
)
console = make_console()
T = TypeVar("T")

WorkspaceOpt = Annotated[
    Path,
    typer.Option("--workspace", "-w", help="Workspace file.", envvar="KIZUNA_WORKSPACE"),
]
StdinOpt = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from one line of stdin.")
]


def _write(workspace: Path, fn: Callable[[Any], T]) -> T:
    from flows import config
    from flows.runtime import engine_for

    def run() -> T:
        ws = config.load(workspace)
        with engine_for(ws.warehouse_url).begin() as conn:
            return fn(conn)

    return guard(run)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _operator() -> str:
    return f"cli:{getpass.getuser()}"


@users_app.command("add")
def add(
    email: Annotated[str, typer.Argument(help="The staff user's e-mail address.")],
    role: Annotated[str, typer.Option(help="rep, manager or admin.")] = "rep",
    name: Annotated[str | None, typer.Option(help="Display name (with --create).")] = None,
    team: Annotated[str | None, typer.Option(help="Team name (made if new).")] = None,
    create: Annotated[
        bool, typer.Option("--create", help="Add the staff user too if no source named them.")
    ] = False,
    password_stdin: StdinOpt = False,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """Let a staff user sign in to `kizuna web` with a role."""
    from warehouse.access import accounts, audit

    password = _password(password_stdin)

    def run(conn: Any) -> int:
        sid = accounts.add(conn, email, role, password, name=name, team=team, create=create)
        audit.record(conn, _operator(), "user-add", email, f"role {role}")
        return sid

    _write(workspace, run)
    console.print(f"Added {esc(email)} as {esc(role)}. They sign in at `kizuna web`.")


@users_app.command("set-role")
def set_role(
    email: Annotated[str, typer.Argument(help="The account's e-mail address.")],
    role: Annotated[str, typer.Argument(help="rep, manager or admin.")],
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """Change what an account may do (applies to its open sessions at once)."""
    from warehouse.access import accounts, audit

    def run(conn: Any) -> None:
        accounts.set_role(conn, email, role)
        audit.record(conn, _operator(), "user-set-role", email, f"role {role}")

    _write(workspace, run)
    console.print(f"{esc(email)} is now {esc(role)}.")


@users_app.command("reset-password")
def reset_password(
    email: Annotated[str, typer.Argument(help="The account's e-mail address.")],
    password_stdin: StdinOpt = False,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """Set a new password; unlocks the account and signs out its sessions."""
    from warehouse.access import accounts, audit

    password = _password(password_stdin)

    def run(conn: Any) -> None:
        accounts.reset_password(conn, email, password)
        audit.record(conn, _operator(), "user-reset-password", email)

    _write(workspace, run)
    console.print(f"New password set for {esc(email)}; the account is unlocked.")


@users_app.command("scope")
def set_scope(
    role: Annotated[str, typer.Argument(help="rep, manager or admin.")],
    scope: Annotated[str, typer.Argument(help="own, team or all.")],
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """Which customers, deals and activities a role sees: its own, its team's, or all."""
    from warehouse.access import accounts, audit

    def run(conn: Any) -> None:
        accounts.set_scope(conn, role, scope)
        audit.record(conn, _operator(), "scope-set", role, scope)

    _write(workspace, run)
    console.print(f"Role {esc(role)} now sees {esc(scope)}.")


@users_app.command("list")
def listing(workspace: WorkspaceOpt = Path("kizuna.yaml")) -> None:
    """Every account with its role, team and lock-out, and the scope of each role."""
    from warehouse.access import accounts, scope

    rows, rules = _write(workspace, lambda conn: (accounts.listing(conn), scope.scopes(conn)))
    tab = Table(title="Accounts", title_justify="left")
    for col in ("e-mail", "name", "team", "role", "locked until (UTC)"):
        tab.add_column(col)
    for r in rows:
        locked = r["locked_until"].strftime("%Y-%m-%d %H:%M") if r["locked_until"] else ""
        tab.add_row(r["email"], r["name"] or "", r["team"] or "", r["role"], locked)
    console.print(tab)
    console.print("Scopes: " + ", ".join(f"{k} → {v}" for k, v in rules.items()))


def web(
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    https_only: Annotated[
        bool,
        typer.Option("--https-only", help="Mark the session cookie Secure (behind a TLS proxy)."),
    ] = False,
) -> None:
    """Serve the web app for staff (sign in with an account from `kizuna users add`)."""
    import uvicorn

    from flows.web.app import from_workspace

    app = guard(lambda: from_workspace(workspace, https_only=https_only))
    console.print(f"Kizuna web on http://{esc(host)}:{port}/ (Ctrl+C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=True)


def demo_accounts(ws_file: Path) -> None:
    """``kizuna demo``'s last step: web accounts, and how to sign in with them."""
    from flows.demo.users import demo_users

    users, password = guard(lambda: demo_users(ws_file))
    console.print(
        f"\nWeb app: [bold]kizuna web -w {esc(ws_file)}[/], then open http://127.0.0.1:8765/ "
        f"and sign in with password [bold]{esc(password)}[/] as:"
    )
    for u in users:
        console.print(f"  {esc(u.email)} ({u.role}{', ' + esc(u.team) if u.team else ''})")
