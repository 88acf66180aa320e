"""``kizuna``: the command line for admins and ops.

Prefect is imported lazily (it costs about a second) so ``--help`` and ``status`` stay quick.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import DEBUG, esc, fail, guard, make_console
from kizuna.errors import ConfigError, KizunaError

app = typer.Typer(
    name="kizuna",
    help=(
        "Kizuna (絆) — one customer store from your mail, calendars, CRMs and exports.\n\n"
        "Start with `kizuna demo` to see it work on generated data, or `kizuna init` to "
        "write a workspace file for your company."
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)
console = make_console()
err_console = make_console(stderr=True)

WorkspaceOpt = Annotated[
    Path,
    typer.Option(
        "--workspace", "-w", help="Workspace file.", envvar="KIZUNA_WORKSPACE", show_default=True
    ),
]


_fail = fail


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="On an error, print the traceback as well.")
    ] = False,
) -> None:
    DEBUG["on"] = debug


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Where to write the workspace file.")] = Path(
        "kizuna.yaml"
    ),
    company: Annotated[str, typer.Option(help="Your company's name.")] = "株式会社サンプル",
    domain: Annotated[
        list[str] | None, typer.Option(help="Your own mail domain (repeatable).")
    ] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented workspace file for a new company."""
    from flows.cli.template import render_workspace

    if path.exists() and not force:
        raise _fail(ConfigError("already exists", file=str(path), fix="pass --force to overwrite"))
    text = render_workspace(company, domain or ["example.co.jp"], path.resolve().parent)
    path.write_text(text, encoding="utf-8")
    from flows.cli.template import LOCAL_SOURCES

    off = [n for n, rel in LOCAL_SOURCES.items() if not (path.resolve().parent / rel).exists()]
    console.print(
        f"Wrote [bold]{esc(path)}[/]. Edit the `sources:` section, then run `kizuna sync`."
    )
    if off:
        console.print(
            f"Disabled until their files exist: {', '.join(off)} "
            f"(see {', '.join(LOCAL_SOURCES[n] for n in off)}); set `enabled: true` then."
        )


@app.command()
def sync(
    source: Annotated[
        str | None, typer.Argument(help="One source name from the workspace; all if omitted.")
    ] = None,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Re-read every stream from scratch and re-apply every row "
            "(lineage, identity decisions and consent are kept).",
        ),
    ] = False,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """Sync one source (or every enabled source) into the warehouse."""
    from flows import config
    from flows.sources.registry import enabled_sources, source_config

    ws = guard(lambda: config.load(workspace))

    def chosen() -> list[str]:
        if source is None:
            return enabled_sources(ws)
        source_config(ws, source)
        return [source]

    names = guard(chosen)
    from flows.runtime import writable_engine

    guard(lambda: writable_engine(ws.warehouse_url))  # unusable or read-only: one line, no run
    if full:
        from flows.cli.sources import reset

        done = guard(lambda: reset(ws, names))
        console.print(f"Full sync: {len(done)} stream(s) will be read from scratch.")
    ok = run_sync(ws.path, [source] if source else None)
    raise typer.Exit(0 if ok else 1)


def run_sync(workspace_file: Path, sources: list[str] | None) -> bool:
    """Run the sync flow with progress bars, then print the run's summary.

    On the Prefect server in ``PREFECT_API_URL`` when it answers, else in this process."""
    from flows.runtime import quiet_prefect

    quiet_prefect(workspace_file.parent / ".kizuna" / "prefect")
    from flows.cli import summary
    from flows.progress import set_reporter

    run_id = uuid.uuid4().hex
    started = time.monotonic()
    ok = True
    failed: list[tuple[str, BaseException]] = []
    with summary.progress_bars(console) as reporter, summary.stream_errors_once(DEBUG["on"]):
        set_reporter(reporter)
        try:
            from flows import config
            from flows.ops.launch import run_flow
            from flows.sync import StreamsFailed, sync_workspace

            ws = config.load(workspace_file)
            run_flow(
                sync_workspace,
                ws.warehouse_url,
                workspace_file=str(workspace_file),
                sources=sources,
                run_id=run_id,
            )
        except StreamsFailed as exc:
            ok = False  # each failed stream is listed once, with its reason, below
            failed = exc.errors
        except Exception as exc:
            ok = False
            if DEBUG["on"]:
                import traceback

                traceback.print_exception(exc, file=sys.stderr)
            from flows.cli.errors import explain

            err_console.print(f"[bold red]sync failed:[/] {esc(explain(exc))}", soft_wrap=True)
        finally:
            set_reporter(None)
    shown = guard(
        lambda: summary.print_run(console, workspace_file, run_id, time.monotonic() - started)
    )
    from flows.cli.errors import explain

    for label, err in failed:
        if label not in shown:
            err_console.print(f"[red]{esc(label)} failed:[/] {esc(explain(err))}", soft_wrap=True)
    return ok


@app.command()
def status(workspace: WorkspaceOpt = Path("kizuna.yaml")) -> None:
    """Show every stream's cursor, last run, counts and quarantine."""
    from flows import config
    from flows.cli import summary

    ws = guard(lambda: config.load(workspace))
    guard(lambda: summary.print_status(console, ws))


@app.command()
def quarantine(
    source: Annotated[str | None, typer.Argument(help="Only this source.")] = None,
    limit: Annotated[int, typer.Option(help="How many entries to show.")] = 50,
    show_payload: Annotated[
        bool, typer.Option("--payload", help="Show each record as it arrived.")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Every open entry as JSON lines (file path, reason, …)."),
    ] = False,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """List open quarantined records: the file to fix, and why it was refused."""
    from flows import config
    from flows.cli.data import audit

    ws = guard(lambda: config.load(workspace))
    if as_json:
        guard(
            lambda: audit.write_quarantine_json(sys.stdout, ws, source=source, payload=show_payload)
        )
        return
    guard(
        lambda: audit.print_quarantine(
            console, ws, source=source, limit=limit, payload=show_payload
        )
    )


@app.command()
def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Folder for the sample workspace and data.")
    ] = Path("kizuna-demo"),
    messages: Annotated[int, typer.Option(help="Mail messages to generate.")] = 3000,
    fresh: Annotated[bool, typer.Option(help="Delete an existing demo folder first.")] = False,
    seed: Annotated[int, typer.Option(help="Random seed for the generated data.")] = 7,
) -> None:
    """Generate a sample company and run it end to end: sync, campaign, reminders, reports."""
    import shutil

    try:
        from flows.demo.generate import generate
    except ModuleNotFoundError as exc:
        if exc.name != "faker":
            raise
        raise _fail(
            ConfigError(
                "the demo generates its data with Faker, which is not installed",
                fix="pip install 'kizuna[demo]' (from a checkout: pip install -e '.[demo]')",
            )
        ) from None

    if fresh and directory.exists():
        shutil.rmtree(directory)
    if not (directory / "kizuna.yaml").exists():
        with console.status("Generating sample data…"):
            ws_file = generate(directory, messages=messages, seed=seed)
        console.print(f"Sample workspace written to [bold]{ws_file}[/]")
    ws_file = directory / "kizuna.yaml"
    ok = run_sync(ws_file.resolve(), None)
    if ok:
        from flows.demo.push import run_demo_push, summary_lines

        with console.status("Running the sample campaign and reminder rules…"):
            push = run_demo_push(ws_file.resolve())
        for line in summary_lines(push):
            console.print(line)
        from flows.cli.reports import demo_reports

        demo_reports(ws_file.resolve())
        from flows.cli.staff.users import demo_accounts

        demo_accounts(ws_file.resolve())
        from flows.cli.quotes import demo_quote

        demo_quote(ws_file.resolve())
    console.print(
        f"\nNext: [bold]kizuna status -w {ws_file}[/] · run again to see an incremental sync"
    )
    raise typer.Exit(0 if ok else 1)


@app.command()
def serve(workspace: WorkspaceOpt = Path("kizuna.yaml")) -> None:
    """Run every schedule (sync, reminders, campaigns, reports) from this process until stopped.

    Uses the Prefect server in `PREFECT_API_URL` if its scheduler is on; otherwise starts one
    (SQLite under the workspace's `.kizuna/prefect`, or `KIZUNA_PREFECT_DATABASE_URL`) and
    stops it on exit. For one machine; past one machine use `deployments/prefect.yaml`.
    """
    import os
    import signal
    from contextlib import ExitStack

    from flows import config
    from flows.ops import server
    from flows.runtime import quiet_prefect
    from flows.settings import settings

    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop ends runs cleanly
    try:
        ws = config.load(workspace)
        env = settings()
        home = ws.root / ".kizuna" / "prefect"
        quiet_prefect(home)
        with ExitStack() as stack:
            url = server.api_url()
            if url:
                server.require_scheduler(url)
            else:
                with console.status("Starting a Prefect server with its scheduler…"):
                    url = stack.enter_context(
                        server.started(home, env.serve_port, env.prefect_database_url)
                    )
                os.environ["PREFECT_API_URL"] = url
            from deployments.serve import serve as serve_all

            console.print(
                f"Serving Kizuna schedules for [bold]{esc(ws.company.name)}[/] "
                f"({ws.company.time_zone}) on {url}. Ctrl-C stops."
            )
            serve_all(str(ws.path), ws.company.time_zone, env.schedules)
    except KizunaError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        console.print("Stopped.")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


deployments_app = typer.Typer(
    help="The deployments of `deployments/table.py`: `kizuna serve` and the work-pool file.",
    no_args_is_help=True,
)
app.add_typer(deployments_app, name="deployments")


@deployments_app.command("write")
def deployments_write(
    path: Annotated[
        Path | None, typer.Argument(help="Where to write it (default: deployments/prefect.yaml).")
    ] = None,
    time_zone: Annotated[str, typer.Option(help="Time zone of the cron schedules.")] = "Asia/Tokyo",
) -> None:
    """Write `prefect.yaml` (process pool) and `kubernetes.yaml` from the deployment table."""
    from deployments.prefect_yaml import PATH, write

    for out in write(path or PATH, time_zone):
        console.print(f"Wrote [bold]{esc(str(out))}[/]")
    console.print("Then: `prefect deploy --all --prefect-file <file>` (README, Past one machine)")


from flows.cli.data.identity import customer_app, identity_app, review_app  # noqa: E402

app.add_typer(customer_app, name="customer")

from flows.cli.privacy.commands import disclose, erase  # noqa: E402

customer_app.command("disclose")(disclose)
customer_app.command("erase")(erase)
app.add_typer(review_app, name="review")
app.add_typer(identity_app, name="identity")

from flows.cli.campaigns import campaigns_app, reminders_app, segments_app  # noqa: E402

app.add_typer(segments_app, name="segments")
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(reminders_app, name="reminders")

from flows.cli.reports import report_app  # noqa: E402

app.add_typer(report_app, name="report")

from flows.cli.crm import crm_app  # noqa: E402

app.add_typer(crm_app, name="crm")

from flows.cli.sources import sources_app  # noqa: E402

app.add_typer(sources_app, name="sources")

from flows.cli.source_types import types as source_types_command  # noqa: E402

sources_app.command("types")(source_types_command)

from flows.cli.check import check  # noqa: E402

app.command("check")(check)

from flows.cli.quotes import quote_app  # noqa: E402

app.add_typer(quote_app, name="quote")

from flows.cli.staff.users import users_app, web  # noqa: E402

app.add_typer(users_app, name="users")
app.command()(web)

from flows.cli.data.export import activities_scope, export_app  # noqa: E402
from flows.cli.staff.viewer import AsOpt  # noqa: E402

app.add_typer(export_app, name="export")


@export_app.command("activities")
def export_activities(
    kind: Annotated[
        str | None,
        typer.Option(help="Only this kind (email, bounce, auto_reply, invitation, meeting, …)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
    as_user: AsOpt = None,
) -> None:
    """Every activity as one JSON line: its sources, kind, timeline flag, subject, from,
    participants, date (UTC), text and attachments."""
    from flows import config
    from flows.cli.data import audit

    try:
        ws = config.load(workspace)
    except KizunaError as exc:
        raise _fail(exc) from None
    where = activities_scope(ws.warehouse_url, as_user)
    if output is None:
        audit.export_activities(sys.stdout, ws, kind=kind, where=where)
        return
    from flows.cli.summary import showing_progress

    with output.open("w", encoding="utf-8") as f, showing_progress(err_console):
        n = audit.export_activities(f, ws, kind=kind, where=where)
    err_console.print(f"{n:,} activities written to {output}")


def main() -> None:
    try:
        app()
    except KizunaError as exc:  # pragma: no cover - last line of defence
        raise SystemExit(fail(exc).exit_code) from None


if __name__ == "__main__":  # pragma: no cover
    main()
