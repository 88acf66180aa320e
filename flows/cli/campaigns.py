"""CLI for the push side: ``kizuna segments``, ``kizuna campaigns``, ``kizuna reminders``.

Reading (segment lists and previews, campaign lists) and the dry run go straight to the
warehouse, so they answer in a second. A real campaign run and the reminder run go through
their Prefect flows, so a manual run looks like a scheduled one in the Prefect UI.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.text import Text

from flows.cli.common import DataTable as Table
from flows.cli.common import WorkspaceOpt, esc, guard, make_console
from flows.cli.staff.viewer import AsOpt, viewer

segments_app = typer.Typer(help="List segments and preview who is in them.", no_args_is_help=True)
campaigns_app = typer.Typer(help="Plan (dry run) and send campaigns.", no_args_is_help=True)
reminders_app = typer.Typer(help="Evaluate reminder rules and notify owners.", no_args_is_help=True)

console = make_console()
T = TypeVar("T")


def _open(workspace: Path) -> tuple[Any, Any]:
    from flows import config
    from flows.push.config import push_config
    from flows.runtime import engine_for

    ws = config.load(workspace)
    return push_config(ws), engine_for(ws.warehouse_url)


@segments_app.command("list")
def segments_list(workspace: WorkspaceOpt = Path("kizuna.yaml")) -> None:
    """Every segment with its member count today."""
    from flows.push.campaign_run import segment_context
    from warehouse.activation.segments import members
    from warehouse.state import now

    def run() -> None:
        cfg, engine = _open(workspace)
        table = Table("segment", "members", "definition")
        ctx = segment_context(cfg, now())
        with engine.connect() as conn:
            for name, cond in cfg.segments.items():
                n = len(members(conn, cond, ctx))
                table.add_row(name, str(n), _short(cfg.segment_source.get(name)))
        console.print(table if cfg.segments else "No segments: add some under `segments:`.")

    guard(run)


def _short(value: Any, limit: int = 90) -> str:
    """A segment definition as the admin wrote it (YAML flow style), not a Python repr."""
    import yaml

    text = " ".join(
        yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, sort_keys=False).split()
    )
    text = text.removesuffix("...").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


@segments_app.command("preview")
def segments_preview(
    name: Annotated[str, typer.Argument(help="Segment name from the workspace file.")],
    limit: Annotated[int, typer.Option(help="Sample members to show.")] = 10,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
    as_user: AsOpt = None,
) -> None:
    """Count, sample members and which conditions each of them meets."""
    from flows.push.campaign_run import segment_context
    from warehouse.access import scope
    from warehouse.activation.audience import profiles
    from warehouse.activation.segments import explain, members
    from warehouse.state import now

    def run() -> None:
        cfg, engine = _open(workspace)
        cond = cfg.segment(name)
        ctx = segment_context(cfg, now())
        with engine.connect() as conn:
            everyone = members(conn, cond, ctx)
            mine = scope.records_of_visible_customers(conn, viewer(conn, as_user))
            ids = everyone if mine is None else [i for i in everyone if i in mine]
            sample = ids[:limit]
            why = explain(conn, cond, ctx, sample)
            profs = profiles(conn, sample)
        hidden = len(everyone) - len(ids)
        outside = f" ({hidden} more outside {esc(as_user or '')}'s scope)" if hidden else ""
        console.print(f"[bold]{esc(name)}[/]: {len(ids)} members{outside}")
        table = Table("id", "name", "email", "organization", "why")
        for pid in sample:
            p = profs.get(pid, {})
            reasons = "\n".join(f"{'✓' if ok else '✗'} {text}" for text, ok in why.get(pid, []))
            table.add_row(
                str(pid),
                str(p.get("full_name") or ""),
                str(p.get("primary_email") or ""),
                str(p.get("org_name") or ""),
                reasons,
            )
        console.print(table)

    guard(run)


@campaigns_app.command("list")
def campaigns_list(workspace: WorkspaceOpt = Path("kizuna.yaml")) -> None:
    """Every campaign: segment, channel, steps, its current plan and what was sent."""
    from sqlalchemy import func, select

    from warehouse.activation import ledger
    from warehouse.activation.ledger_schema import Delivery

    def run() -> None:
        cfg, engine = _open(workspace)
        table = Table("campaign", "segment", "channel", "steps", "plan", "sent")
        with engine.connect() as conn:
            for name, c in cfg.campaigns.items():
                current = ledger.current_plan(conn, name)
                sent = conn.execute(
                    select(func.count()).where(Delivery.campaign == name, Delivery.status == "sent")
                ).scalar_one()
                state = (
                    f"#{current.id} {current.status} {dict(current.counts)}"
                    if current is not None
                    else "none (run --dry-run)"
                )
                table.add_row(name, c.segment, c.channel, str(len(c.steps)), state, str(sent))
        console.print(table if cfg.campaigns else "No campaigns: add some under `campaigns:`.")

    guard(run)


@campaigns_app.command("status")
def campaigns_status(
    name: Annotated[str | None, typer.Argument(help="Only this campaign.")] = None,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """Recipients held for a person: sends in doubt that the channel could not confirm."""
    from zoneinfo import ZoneInfo

    from rich.markup import escape

    from warehouse.activation import ledger

    def run() -> None:
        cfg, engine = _open(workspace)
        with engine.connect() as conn:
            rows = ledger.held(conn, name)
        if not rows:
            console.print("No recipients are held: every send is sent, failed or still to come.")
            return
        zone = ZoneInfo(cfg.time_zone)
        table = Table("campaign", "person", "step", "address", "since", "why held")
        for r in rows:
            since = r.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
            table.add_row(
                escape(r.campaign),
                str(r.person_id),
                str(r.step),
                escape(r.address or ""),
                since,
                escape(r.detail or ""),
            )
        console.print(table)
        console.print(
            "Check the recipient's mailbox or your mail server's log, then decide: "
            "`kizuna campaigns decide CAMPAIGN PERSON --mark-sent` (it arrived) or "
            "`--resend` (send it again with the next approved run)."
        )

    guard(run)


@campaigns_app.command("decide")
def campaigns_decide(
    name: Annotated[str, typer.Argument(help="Campaign name.")],
    person: Annotated[int, typer.Argument(help="Person id, as `campaigns status` lists it.")],
    resend: Annotated[
        bool,
        typer.Option("--resend/--mark-sent", help="Send it again, or record that it arrived."),
    ],
    step: Annotated[int, typer.Option(help="Campaign step.")] = 1,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """Settle a held recipient: resend with the next approved run, or mark it sent."""
    import getpass

    from kizuna.errors import FatalError
    from warehouse.activation import ledger
    from warehouse.db import write_transaction
    from warehouse.state import now

    def run() -> None:
        _, engine = _open(workspace)
        key = ledger.Key(name, person, step)
        with write_transaction(engine) as conn:
            done = ledger.decide(conn, key, resend=resend, at=now(), who=getpass.getuser())
        if not done:
            raise FatalError(
                f"person {person} step {step} of campaign {name!r} is not held; "
                "see `kizuna campaigns status`"
            )
        if resend:
            console.print(
                f"Person {person} will get step {step} again: run "
                f"`kizuna campaigns run {name} --dry-run`, then `kizuna campaigns run {name}`."
            )
        else:
            console.print(f"Person {person} step {step} of {name} is recorded as sent.")

    guard(run)


@campaigns_app.command("run")
def campaigns_run(
    name: Annotated[str, typer.Argument(help="Campaign name from the workspace file.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan only: who gets what, who is skipped and why.")
    ] = False,
    show: Annotated[int, typer.Option(help="Plan lines to print.")] = 50,
    workspace: WorkspaceOpt = Path("kizuna.yaml"),
) -> None:
    """`--dry-run` stores the plan (the approval gate); without it, send exactly that plan."""
    if dry_run:
        guard(lambda: _dry_run(workspace, name, show))
        return
    from flows.cli.summary import showing_progress

    with showing_progress(console):
        result = guard(lambda: _in_prefect(workspace, lambda f: _real_run(f, name)))
    outcomes = Counter(result.get("outcomes", {}))
    if result.get("plan_id") is None:
        console.print(
            f"Campaign [bold]{esc(name)}[/]: another run sent the approved plan meanwhile."
        )
        return
    console.print(f"Campaign [bold]{esc(name)}[/], plan #{result.get('plan_id')}: {dict(outcomes)}")
    if outcomes.get("in_doubt"):
        console.print("Some sends are held in doubt: see `kizuna campaigns status`.")
    if outcomes.get("deferred"):
        console.print("Deferred lines (quiet hours) are sent by the next run.")


def _dry_run(workspace: Path, name: str, show: int) -> None:
    import uuid

    from flows.push.campaign_run import plan
    from flows.push.campaign_send import campaign_lease
    from flows.push.feedback import scan_folders

    cfg, engine = _open(workspace)
    scan_folders(engine, cfg)
    with campaign_lease(engine, cfg, name, run_id=f"cli-{uuid.uuid4().hex[:12]}"):
        view = plan(engine, cfg, name)
    c = view.counts
    console.print(
        f"Plan [bold]#{view.plan_id}[/] for [bold]{esc(name)}[/]: {c['send']} to send, "
        f"{c['skip']} skipped; segment {esc(cfg.campaign(name).segment)}: {view.members} members "
        f"({view.entered} new, {view.exited} left since the last snapshot)"
    )
    table = Table("person", "address", "step", "action", "subject / reason")
    ordered = sorted(view.lines, key=lambda x: (x.action != "skip", x.person_id))
    for line in ordered[:show]:
        colour = "red" if line.action == "skip" else "green"
        detail = line.reason if line.action == "skip" else line.subject
        table.add_row(
            f"{line.person_id} {line.name}",
            line.address or "",
            str(line.step),
            Text(line.action, style=colour),
            detail or "",
        )
    console.print(table)
    if len(view.lines) > show:
        console.print(f"… and {len(view.lines) - show} more lines (--show N)")
    reasons = Counter((x.reason or "").split(" (")[0] for x in view.lines if x.action == "skip")
    for reason, n in reasons.most_common():
        console.print(f"  skipped {n}: {esc(reason)}")
    console.print(f"Approve by running: [bold]kizuna campaigns run {esc(name)}[/]")


def _in_prefect(workspace: Path, fn: Callable[[str], T]) -> T:
    from flows import config
    from flows.runtime import quiet_prefect

    ws = config.load(workspace)
    quiet_prefect(ws.root / ".kizuna" / "prefect")
    return fn(str(ws.path))


def _real_run(workspace_file: str, name: str) -> dict[str, Any]:
    from flows import config
    from flows.ops.launch import run_flow
    from flows.push.campaigns import run_campaign

    wh = config.load(workspace_file).warehouse_url
    result: dict[str, Any] = run_flow(run_campaign, wh, workspace_file=workspace_file, name=name)
    return result


@reminders_app.command("run")
def reminders_run(workspace: WorkspaceOpt = Path("kizuna.yaml")) -> None:
    """Evaluate every rule now; notify owners of new reminders, resolve cleared ones."""

    def go(f: str) -> dict[str, Any]:
        from flows import config
        from flows.ops.launch import run_flow
        from flows.push.reminders import reminders_flow

        out: dict[str, Any] = run_flow(
            reminders_flow, config.load(f).warehouse_url, workspace_file=f
        )
        return out

    result = guard(lambda: _in_prefect(workspace, go))
    table = Table("rule", "opened", "resolved")
    for rule, r in result["rules"].items():
        table.add_row(rule, str(r["opened"]), str(r["resolved"]))
    console.print(table)
    d = result["delivery"]
    console.print(
        f"Notified owners: {d['sent']} reminders in {d.get('digests', 0)} digest(s), "
        f"{d['recovered']} recovered after a crash"
    )
    for s in d["skipped"]:
        console.print(f"  not sent: {esc(s)}")
    for s in d.get("in_doubt", []):
        console.print(f"  in doubt (asked again next run): {esc(s)}")
