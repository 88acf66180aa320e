"""Campaigns (managers and admins): make the dry-run plan, read who gets what and who is
skipped and why, approve it with one button (the real run sends exactly that plan, through
the same flow ``kizuna campaigns run`` starts, in the background), and follow the run live:
the plan part of the page is refreshed by ``static/kizuna.js`` until the run is over.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from flows.push.config import PushConfig, push_config
from flows.web.auth import db, form, signed_in
from flows.web.render import page
from kizuna.errors import KizunaError
from warehouse.access import audit, campaigns
from warehouse.access.scope import Viewer


def _config(request: Request) -> PushConfig:
    ws = request.app.state.ws
    if ws is None:
        raise HTTPException(404, "campaigns need the workspace file (start with `kizuna web`)")
    try:
        return push_config(ws)
    except KizunaError as exc:
        raise HTTPException(500, str(exc)) from None


def _name(request: Request, cfg: PushConfig) -> str:
    name = str(request.path_params["name"])
    if name not in cfg.campaigns:
        raise HTTPException(404, "no such campaign")
    return name


@signed_in("manager")
async def listing(request: Request, viewer: Viewer) -> Response:
    cfg = _config(request)

    def run(conn: Any) -> list[dict[str, Any]]:
        return [
            {"name": n, "c": c, "plan": campaigns.latest(conn, n)}
            for n, c in sorted(cfg.campaigns.items())
        ]

    return page(request, "campaigns.html.j2", rows=await db(request, run))


async def _plan_context(
    request: Request, viewer: Viewer, name: str, audit_view: bool
) -> dict[str, Any]:
    """What the plan part of the page shows: the newest plan, its lines and the live run."""

    def run(conn: Any) -> tuple[Any, Any]:
        cur = campaigns.latest(conn, name)
        view = campaigns.plan_view(conn, viewer, cur["id"]) if cur else None
        if audit_view:
            audit.record(
                conn, viewer, "view", f"campaign {name}", f"plan {cur['id'] if cur else '-'}"
            )
        return cur, view

    cur, view = await db(request, run, write=audit_view)
    job = _runs(request).get(name)
    live = (job is not None and job.thread.is_alive()) or bool(cur and cur["status"] == "running")
    return {
        "name": name,
        "plan": cur,
        "view": view,
        "live": live,
        "run_error": job.error if job is not None and not live else None,
    }


@signed_in("manager")
async def show(request: Request, viewer: Viewer) -> Response:
    cfg = _config(request)
    name = _name(request, cfg)
    ctx = await _plan_context(request, viewer, name, audit_view=True)
    return page(
        request,
        "campaign.html.j2",
        c=cfg.campaigns[name],
        done=request.query_params.get("done", "")[:300],
        **ctx,
    )


@signed_in("manager")
async def progress(request: Request, viewer: Viewer) -> Response:
    """The plan part alone, for kizuna.js to swap in while a run is live (not audited: a
    page open during a run asks every two seconds; opening the page was)."""
    name = _name(request, _config(request))
    return page(
        request, "campaign_plan.html.j2", **await _plan_context(request, viewer, name, False)
    )


@dataclass
class Job:
    """A real run started from the page, in a thread of the web server."""

    thread: threading.Thread
    error: str | None = None


def _runs(request: Request) -> dict[str, Job]:
    runs: dict[str, Job] | None = getattr(request.app.state, "campaign_runs", None)
    if runs is None:
        runs = request.app.state.campaign_runs = {}
    return runs


def _start(request: Request, viewer: Viewer, name: str) -> None:
    """The real run in the background (the same flow as ``kizuna campaigns run``); the page
    follows it through the plan's outcomes, which each send commits with its ledger row."""
    state = request.app.state

    def work() -> None:
        try:
            result = _send(state.ws, name)
            msg = f"plan #{result.get('plan_id')} sent: {dict(result.get('outcomes', {}))}"
        except Exception as exc:  # the run's own error, shown on the page and audited
            job.error = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
            msg = f"not done: {job.error}"
        with state.engine.begin() as conn:
            audit.record(conn, viewer, "campaign-run", name, msg)

    job = Job(threading.Thread(target=work, name=f"campaign-{name}", daemon=True))
    _runs(request)[name] = job
    job.thread.start()


def _dry_run(engine: Any, cfg: PushConfig, name: str) -> int:
    from flows.push.campaign_run import plan
    from flows.push.campaign_send import campaign_lease
    from flows.push.feedback import scan_folders

    scan_folders(engine, cfg)
    with campaign_lease(engine, cfg, name, run_id=f"web-{uuid.uuid4().hex[:12]}"):
        return plan(engine, cfg, name).plan_id


def _send(ws: Any, name: str) -> dict[str, Any]:
    from flows.ops.launch import run_flow
    from flows.push.campaigns import run_campaign
    from flows.runtime import quiet_prefect

    quiet_prefect(ws.root / ".kizuna" / "prefect")
    result: dict[str, Any] = run_flow(
        run_campaign, ws.warehouse_url, workspace_file=str(ws.path), name=name
    )
    return result


@signed_in("manager")
async def act(request: Request, viewer: Viewer) -> Response:
    cfg = _config(request)
    name = _name(request, cfg)
    data = await form(request)
    what = str(data.get("do") or "")
    state = request.app.state
    try:
        if what == "plan":
            pid = await run_in_threadpool(_dry_run, state.engine, cfg, name)
            msg = f"plan #{pid} made: check it, then approve"
        elif what == "approve":
            want = str(data.get("plan") or "")
            cur = await db(request, campaigns.current, name)
            job = _runs(request).get(name)
            busy = job is not None and job.thread.is_alive()
            if busy or cur is None or str(cur["id"]) != want or cur["status"] != "planned":
                raise HTTPException(409, "the plan changed since you read it; reload the page")
            _start(request, viewer, name)
            msg = f"plan #{want} approved: sending, this page follows the run"
        else:
            raise HTTPException(400, "choose plan or approve")
    except KizunaError as exc:
        msg = f"not done: {exc}"
    await db(
        request, lambda conn: audit.record(conn, viewer, f"campaign-{what}", name, msg), write=True
    )
    return RedirectResponse(f"/campaigns/{quote(name)}?done={quote(msg)}", status_code=303)


ROUTES = [
    Route("/campaigns", listing),
    Route("/campaigns/{name}", show),
    Route("/campaigns/{name}/progress", progress),
    Route("/campaigns/{name}/act", act, methods=["POST"]),
]
