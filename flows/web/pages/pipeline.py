"""The pipeline report, live: the same read model and the same rendering as
``kizuna report pipeline``, counted over the deals the viewer's scope covers and narrowed by
team, owner or stage from the filter bar.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from flows.reports.config import reports_config
from flows.reports.render import pipeline_html
from flows.web.auth import db, signed_in
from flows.web.render import page
from warehouse.access import audit, reports
from warehouse.access.scope import Viewer
from warehouse.reporting.pipeline import pipeline
from warehouse.state import now


def _body(html: str) -> Markup:
    """The report's ``<main>`` (rendered with autoescape by the report's own template)."""
    inner = html.split("<main>", 1)[-1].rsplit("</main>", 1)[0]
    return Markup(inner)


@signed_in()
async def live(request: Request, viewer: Viewer) -> Response:
    team = request.query_params.get("team", "")[:200] or None
    raw_owner = request.query_params.get("owner", "")
    owner = int(raw_owner) if raw_owner.isdigit() else None
    stage = request.query_params.get("stage", "")[:200] or None
    ws = request.app.state.ws
    cfg = reports_config(ws) if ws is not None else None
    zone = request.app.state.zone

    def run(conn: Any) -> tuple[Any, list[str], list[dict[str, Any]], list[str]]:
        owners = reports.pipeline_owners(conn, viewer, team, owner)
        p = pipeline(
            conn,
            now(),
            zone,
            stale_days=cfg.stale_days if cfg else 14,
            stages=cfg.stages if cfg else (),
            owner_ids=owners,
            stage=stage,
        )
        teams, staff = reports.pipeline_choices(conn, viewer)
        stages = reports.pipeline_stages(conn, viewer, cfg.stages if cfg else ())
        what = f"team={team or '*'} owner={owner or '*'} stage={stage or '*'}"
        audit.record(conn, viewer, "view", "pipeline", what)
        return p, teams, staff, stages

    p, teams, staff, stages = await db(request, run, write=True)
    lang = cfg.language if cfg else "ja"
    company = ws.company.name if ws is not None else ""
    html = pipeline_html(p, lang, company, now().strftime("%Y-%m-%d %H:%M UTC"))
    return page(
        request,
        "pipeline.html.j2",
        report=_body(html),
        teams=teams,
        staff=staff,
        team=team,
        owner=owner,
        stages=stages,
        stage=stage,
    )


ROUTES = [Route("/pipeline", live)]
