"""HubSpot read side on respx: search slicing, ties, archived, associations, 429 policies."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from connectors.crm import hubspot as hs
from connectors.throttle import RetryPolicy
from flows.engine import run_stream
from flows.sources.crm import hubspot as src
from flows.workspace import Company, Workspace
from kizuna.errors import QuotaError
from tests.support.fakes.fake_hubspot import T0, FakeHubSpot, rate_limited
from warehouse import schema as t
from warehouse.identity.graph import membership
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.resolve import resolve_full


def _api(fake: FakeHubSpot, sleeps: list[float] | None = None) -> hs.HubSpot:
    policy = RetryPolicy(sleep=(sleeps if sleeps is not None else []).append, rand=lambda: 0.0)
    return hs.HubSpot(fake.client(), policy=policy)


def _ws(tmp: Path) -> Workspace:
    ws = Workspace(company=Company(name="自社", domains=["jisha.co.jp"]))
    return ws.model_copy(update={"path": tmp / "kizuna.yaml"})


def _streams(fake: FakeHubSpot, tmp: Path, **objects: Any) -> dict[str, Any]:
    cfg = src.Config.model_validate(
        {
            "type": "hubspot",
            "token_env": "HS_TOKEN",
            "objects": objects,
            "searches_per_second": 1000,
        }
    )
    return {s.stream: s for s in src.streams("hubspot", cfg, _ws(tmp), client=fake.client())}


def _searches(fake: FakeHubSpot) -> int:
    return sum(1 for c in fake.calls if c.endswith("/search"))


def test_search_request_shape_and_the_mark_moving_every_page() -> None:
    fake = FakeHubSpot()
    for i in range(5):
        fake.add("contacts", {"email": f"p{i}@abc.co.jp", "lastname": f"山田{i}"})
    seen: list[dict[str, Any]] = []
    api = _api(fake)
    orig = api.search_page

    def spy(*a: Any) -> dict[str, Any]:
        out = orig(*a)
        seen.append({"hw": a[2], "after": a[3]})
        return out

    api.search_page = spy  # type: ignore[method-assign]
    pages = list(hs.read_objects(api, "contacts", None, archived=False, limit=2))
    ids = [r["id"] for p in pages for r in p.records]
    # The boundary record is read again by the next search but emitted once.
    assert len(ids) == len(set(ids)) == 5
    assert all(s["after"] is None for s in seen)  # no offsets: the mark moved instead
    assert pages[-1].snapshot_end
    body = json.loads(fake_last_search(fake, api))
    assert body["sorts"] == [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}]
    assert body["filterGroups"][0]["filters"][0]["operator"] == "GTE"
    assert body["limit"] == 2


def fake_last_search(fake: FakeHubSpot, api: hs.HubSpot) -> bytes:
    """Replay one incremental search to look at the request body HubSpot receives."""
    captured: list[bytes] = []
    transport = api.client._transport  # the MockTransport

    def capture(request: Any) -> Any:
        captured.append(request.content)
        return orig(request)

    orig = transport.handle_request
    transport.handle_request = capture  # type: ignore[method-assign]
    try:
        api.search_page("contacts", ["email"], 1, None, 2)
    finally:
        transport.handle_request = orig  # type: ignore[method-assign]
    return captured[0]


def test_records_sharing_one_timestamp_page_with_after_inside_the_tie() -> None:
    fake = FakeHubSpot()
    for i in range(5):
        fake.add("companies", {"name": f"株式会社{i}"}, when=T0)
    fake.add("companies", {"name": "後"}, when=T0 + timedelta(minutes=1))
    pages = list(hs.read_objects(_api(fake), "companies", None, archived=False, limit=2))
    names = [r["properties"]["name"] for p in pages for r in p.records]
    assert sorted(set(names)) == sorted(
        ["株式会社0", "株式会社1", "株式会社2", "株式会社3", "株式会社4", "後"]
    )
    assert any(p.cursor.after for p in pages)


def test_more_than_the_search_window_is_read_by_moving_the_mark(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = FakeHubSpot()
    n = 460  # past the (scaled-down) window: one query could never page this far
    for i in range(n):
        fake.add("deals", {"dealname": f"案件{i}"})
    monkeypatch.setattr(hs, "SEARCH_WINDOW", 100)
    pages = list(hs.read_objects(_api(fake), "deals", None, archived=False, limit=50))
    got = {r["id"] for p in pages for r in p.records}
    assert len(got) == n
    assert all(p.cursor.after is None for p in pages)


def test_archived_records_become_tombstones_and_people_link_to_companies(
    engine: Engine, tmp_path: Path
) -> None:
    fake = FakeHubSpot()
    fake.owners = [
        {"id": "9", "email": "sato@jisha.co.jp", "firstName": "一郎", "lastName": "佐藤"}
    ]
    co = fake.add(
        "companies", {"name": "株式会社ABC", "domain": "abc.co.jp", "hubspot_owner_id": "9"}
    )
    a = fake.add(
        "contacts",
        {
            "email": "Yamada@abc.co.jp",
            "lastname": "山田",
            "firstname": "太郎",
            "hubspot_owner_id": "9",
        },
    )
    b = fake.add("contacts", {"email": "suzuki@abc.co.jp", "lastname": "鈴木"})
    fake.link("contacts", a["id"], "companies", co["id"])
    streams = _streams(fake, tmp_path, contacts={}, companies={})
    run_stream(engine, streams["companies"], "r1")
    res = run_stream(engine, streams["contacts"], "r1")
    assert res.stats.by_entity["person"] == 2  # and the contacts' references to companies
    resolve_full(engine, MatchSettings())
    with engine.connect() as conn:
        people = conn.execute(
            select(
                t.Person.full_name, t.Person.organization_id, t.Person.owner_id, t.Person.deleted_at
            )
        ).all()
        orgs = conn.execute(select(t.Organization.id)).scalars().all()
        company = membership(conn, "organization", orgs)
    assert len(set(company.values())) == 1  # the company and the references to it: one
    assert {p.full_name for p in people} == {"山田 太郎", "鈴木"}
    assert all(company[p.organization_id] == company[orgs[0]] for p in people)

    fake.objects["contacts"][b["id"]]["archived"] = True
    res2 = run_stream(engine, streams["contacts"], "r2")
    assert res2.stats.deleted == 1
    with engine.connect() as conn:
        gone = (
            conn.execute(select(t.Person.full_name).where(t.Person.deleted_at.is_not(None)))
            .scalars()
            .all()
        )
    assert gone == ["鈴木"]


def test_deal_stage_labels_and_won_status_come_from_the_pipeline(
    engine: Engine, tmp_path: Path
) -> None:
    fake = FakeHubSpot()
    fake.pipelines = [
        {
            "id": "default",
            "label": "Sales Pipeline",
            "stages": [
                {
                    "id": "appointmentscheduled",
                    "label": "アポ獲得",
                    "metadata": {"isClosed": "false", "probability": "0.2"},
                },
                {
                    "id": "closedwon",
                    "label": "受注",
                    "metadata": {"isClosed": "true", "probability": "1.0"},
                },
                {
                    "id": "closedlost",
                    "label": "失注",
                    "metadata": {"isClosed": "true", "probability": "0.0"},
                },
            ],
        }
    ]
    co = fake.add("companies", {"name": "株式会社ABC", "domain": "abc.co.jp"})
    d = fake.add(
        "deals",
        {
            "dealname": "導入案件",
            "amount": "1500000",
            "dealstage": "appointmentscheduled",
            "pipeline": "default",
            "closedate": "2026-06-30T00:00:00Z",
        },
    )
    fake.link("deals", d["id"], "companies", co["id"])
    streams = _streams(fake, tmp_path, deals={})
    run_stream(engine, streams["deals"], "r1")
    fake.touch("deals", d["id"], dealstage="closedwon")
    run_stream(engine, streams["deals"], "r2")
    with engine.connect() as conn:
        deal = conn.execute(select(t.Deal)).one()
        stages = (
            conn.execute(select(t.DealStageHistory.stage).order_by(t.DealStageHistory.id))
            .scalars()
            .all()
        )
    assert (deal.stage, deal.status, deal.amount) == ("受注", "won", 1500000)
    assert deal.organization_id is not None
    assert stages == ["アポ獲得", "受注"]


def test_meetings_become_activities_with_contacts_owner_and_deal(
    engine: Engine, tmp_path: Path
) -> None:
    fake = FakeHubSpot()
    fake.owners = [{"id": "9", "email": "sato@jisha.co.jp"}]
    c = fake.add("contacts", {"email": "yamada@abc.co.jp", "lastname": "山田"})
    d = fake.add("deals", {"dealname": "導入案件", "dealstage": "x"})
    m = fake.add(
        "meetings",
        {
            "hs_timestamp": "2026-03-02T01:00:00Z",
            "hs_meeting_title": "定例",
            "hs_meeting_start_time": "2026-03-02T01:00:00Z",
            "hs_meeting_end_time": "2026-03-02T02:00:00Z",
            "hubspot_owner_id": "9",
        },
    )
    fake.link("meetings", m["id"], "contacts", c["id"])
    fake.link("meetings", m["id"], "deals", d["id"])
    streams = _streams(fake, tmp_path, deals={}, meetings={})
    run_stream(engine, streams["deals"], "r1")
    run_stream(engine, streams["meetings"], "r1")
    with engine.connect() as conn:
        act = conn.execute(select(t.Activity)).one()
        parts = conn.execute(
            select(t.ActivityParticipant.email, t.ActivityParticipant.staff_user_id)
        ).all()
    assert (act.kind, act.subject, act.deal_id is not None) == ("meeting", "定例", True)
    assert {p.email for p in parts} == {"yamada@abc.co.jp", "sato@jisha.co.jp"}


def test_ten_secondly_429_is_waited_out_with_retry_after_and_daily_is_a_quota_error() -> None:
    fake = FakeHubSpot()
    fake.add("companies", {"name": "A"})
    fake.scripted = [rate_limited(retry_after="3")]
    sleeps: list[float] = []
    pages = list(hs.read_objects(_api(fake, sleeps), "companies", None, archived=False))
    assert sleeps == [3.0]
    assert len(pages[-1].records) == 1

    fake.scripted = [rate_limited("SECONDLY")]
    sleeps.clear()
    list(hs.read_objects(_api(fake, sleeps), "companies", None, archived=False))
    assert sleeps == [10.0]  # no Retry-After: the rate-limit window header

    fake.scripted = [rate_limited("DAILY")]
    with pytest.raises(QuotaError, match="daily"):
        list(hs.read_objects(_api(fake), "companies", None, archived=False))


def test_a_token_without_the_owners_scope_still_syncs_records(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import httpx

    fake = FakeHubSpot()
    fake.add("companies", {"name": "A", "hubspot_owner_id": "9"})
    fake.scripted = [
        httpx.Response(
            403,
            json={
                "status": "error",
                "message": "This app hasn't been granted all required scopes to make this call.",
                "category": "MISSING_SCOPES",
            },
        )
    ]
    pages = list(hs.read_objects(_api(fake), "companies", None, archived=False))
    assert len(pages[-1].records) == 1 and "_owner_email" not in pages[-1].records[0]
    assert "cannot read owners" in caplog.text
