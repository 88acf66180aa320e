"""kintone read side on respx: Japanese field codes, $id seek, cursor API expiry, id-set deletes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from connectors.crm import kintone as kt
from connectors.throttle import RetryPolicy
from flows.engine import run_stream
from flows.sources.crm import kintone as src
from flows.workspace import Company, Workspace
from kizuna.errors import AuthError, FatalError
from tests.support.fakes.fake_kintone import BASE, FakeKintone, error
from warehouse import schema as t

APP = 12
TYPES = {
    "会社名": "SINGLE_LINE_TEXT",
    "ウェブサイト": "LINK",
    "法人番号": "SINGLE_LINE_TEXT",
    "担当者": "USER_SELECT",
    "ランク": "DROP_DOWN",
}


def _ws(tmp: Path) -> Workspace:
    ws = Workspace(company=Company(name="自社", domains=["jisha.co.jp"]))
    return ws.model_copy(update={"path": tmp / "kizuna.yaml"})


def _cfg(**app: Any) -> src.Config:
    return src.Config.model_validate(
        {
            "type": "kintone",
            "base_url": BASE,
            "apps": {
                "customers": {
                    "app": APP,
                    "token_env": "KT",
                    "entity": "organization",
                    "field_map": {
                        "name": "会社名",
                        "domain": "ウェブサイト",
                        "corporate_number": "法人番号",
                        "owner_email": "担当者",
                        "attributes.rank": "ランク",
                    },
                    "user_domain": "jisha.co.jp",
                    **app,
                }
            },
        }
    )


def _fill(fake: FakeKintone, n: int) -> None:
    fake.app(APP, TYPES)
    for i in range(n):
        fake.add(
            APP,
            {
                "会社名": f"株式会社サンプル{i}",
                "ウェブサイト": f"https://sample{i}.co.jp",
                "法人番号": f"{1000000000000 + i}",
                "担当者": [{"code": "sato", "name": "佐藤 一郎"}],
                "ランク": "A",
            },
        )


def _spec(fake: FakeKintone, tmp: Path, **app: Any) -> Any:
    return src.streams("kintone", _cfg(**app), _ws(tmp), client=fake.client())[0]


def test_japanese_field_codes_map_to_organizations_and_only_changes_are_applied(
    engine: Engine, tmp_path: Path
) -> None:
    fake = FakeKintone()
    _fill(fake, 3)
    spec = _spec(fake, tmp_path)
    res = run_stream(engine, spec, "r1")
    assert res.stats.inserted == 3
    with engine.connect() as conn:
        orgs = conn.execute(select(t.Organization.name, t.Organization.corporate_number)).all()
        owner = conn.execute(select(t.StaffUser.email)).scalars().all()
    assert sorted(o.name for o in orgs)[0] == "株式会社サンプル0"
    assert {o.corporate_number for o in orgs} == {"1000000000000", "1000000000001", "1000000000002"}
    assert owner == ["sato@jisha.co.jp"]

    fake.edit(APP, 2, {"会社名": "株式会社サンプル改"})
    res2 = run_stream(engine, spec, "r2")
    assert res2.stats.updated == 1
    with engine.connect() as conn:
        names = set(conn.execute(select(t.Organization.name)).scalars())
    assert "株式会社サンプル改" in names


def test_seek_by_id_never_uses_offset_past_the_10000_cap() -> None:
    fake = FakeKintone()
    _fill(fake, 1200)
    sent: list[str] = []
    client = fake.client()
    client.event_hooks["request"] = [
        lambda req: sent.append(json.loads(req.read() or b"{}").get("query", ""))
    ]
    spec = kt.AppSpec(app=APP, sweep_deletes=False)
    pages = list(kt.read_app(kt.Kintone(client), spec, None))
    ids = [kt.record_id(r) for p in pages for r in p.records]
    assert ids == list(range(1, 1201))
    assert all("offset" not in q for q in sent)
    assert any("$id > 1000 order by $id asc limit 500" in q for q in sent)
    assert pages[-1].cursor.last_id is None and pages[-1].cursor.hw is not None


def test_cursor_api_replaces_an_expired_cursor_and_resumes_after_the_last_id() -> None:
    fake = FakeKintone()
    _fill(fake, 1200)
    spec = kt.AppSpec(app=APP, mode="cursor", sweep_deletes=False)
    got: list[int] = []
    it = kt.read_app(kt.Kintone(fake.client()), spec, None)
    first = next(it)
    got += [kt.record_id(r) for r in first.records]
    fake.expire_cursors()  # ten idle minutes pass
    for page in it:
        got += [kt.record_id(r) for r in page.records]
    assert got == list(range(1, 1201))
    assert fake.calls.count("POST /k/v1/records/cursor.json") == 2
    assert not fake.cursors  # read to the end: nothing left open on the domain


def test_a_stopped_cursor_pass_deletes_its_server_cursor() -> None:
    fake = FakeKintone()
    _fill(fake, 1200)
    it = kt.read_app(kt.Kintone(fake.client()), kt.AppSpec(app=APP, mode="cursor"), None)
    next(it)
    it.close()  # the engine stops early (crash, quota)
    assert not fake.cursors
    assert "DELETE /k/v1/records/cursor.json" in fake.calls


def test_a_pass_interrupted_mid_way_resumes_after_the_last_committed_id() -> None:
    fake = FakeKintone()
    _fill(fake, 7)
    cur = kt.KintoneCursor(hw=None, last_id=4, pass_started="2026-03-01T00:00:00Z")
    pages = list(
        kt.read_app(
            kt.Kintone(fake.client()), kt.AppSpec(app=APP, sweep_deletes=False), cur, page_size=2
        )
    )
    assert [kt.record_id(r) for p in pages for r in p.records] == [5, 6, 7]
    assert pages[-1].cursor == kt.KintoneCursor(hw="2026-03-01T00:00:00Z", passes=0)


def test_deleted_records_are_found_by_the_id_set_sweep(engine: Engine, tmp_path: Path) -> None:
    fake = FakeKintone()
    _fill(fake, 5)
    spec = _spec(fake, tmp_path)
    run_stream(engine, spec, "r1")
    del fake.apps[APP].records[3]
    res = run_stream(engine, spec, "r2")
    assert res.stats.deleted == 1
    with engine.connect() as conn:
        gone = (
            conn.execute(select(t.Organization.name).where(t.Organization.deleted_at.is_not(None)))
            .scalars()
            .all()
        )
    assert gone == ["株式会社サンプル2"]


def test_errors_are_classified_by_kintone_code() -> None:
    fake = FakeKintone()
    _fill(fake, 1)
    bad = httpx.Client(base_url=BASE, transport=fake.client()._transport)  # no token header
    with pytest.raises(AuthError, match="GAIA_IA02"):
        list(kt.read_app(kt.Kintone(bad), kt.AppSpec(app=APP), None))

    fake.scripted = [error(400, "GAIA_IQ11", "指定したフィールド（code: 担当）が見つかりません。")]
    with pytest.raises(FatalError, match="GAIA_IQ11"):
        list(kt.read_app(kt.Kintone(fake.client()), kt.AppSpec(app=APP), None))

    sleeps: list[float] = []
    fake.scripted = [error(429, "GAIA_TO04", "リクエストが多すぎます。")]
    policy = RetryPolicy(sleep=sleeps.append, rand=lambda: 0.5)
    pages = list(kt.read_app(kt.Kintone(fake.client(), policy), kt.AppSpec(app=APP), None))
    assert len(sleeps) == 1 and sum(len(p.records) for p in pages) == 1


def test_user_field_codes_become_addresses_and_bad_numbers_are_quarantined(
    engine: Engine, tmp_path: Path
) -> None:
    fake = FakeKintone()
    fake.app(
        13,
        {
            "案件名": "SINGLE_LINE_TEXT",
            "金額": "NUMBER",
            "ステータス": "DROP_DOWN",
            "完了予定日": "DATE",
        },
    )
    fake.add(
        13, {"案件名": "更改", "金額": "1500000", "ステータス": "受注", "完了予定日": "2026-04-30"}
    )
    fake.add(13, {"案件名": "壊れ", "金額": "百万", "ステータス": "提案"})
    cfg = src.Config.model_validate(
        {
            "type": "kintone",
            "base_url": BASE,
            "apps": {
                "deals": {
                    "app": 13,
                    "token_env": "KT",
                    "entity": "deal",
                    "field_map": {
                        "name": "案件名",
                        "amount": "金額",
                        "stage": "ステータス",
                        "expected_close": "完了予定日",
                    },
                    "won_stages": ["受注"],
                }
            },
        }
    )
    spec = src.streams("kintone", cfg, _ws(tmp_path), client=fake.client())[0]
    res = run_stream(engine, spec, "r1")
    assert (res.stats.inserted, res.stats.quarantined) == (1, 1)
    with engine.connect() as conn:
        d = conn.execute(select(t.Deal)).one()
    assert (d.status, d.amount, str(d.expected_close)) == ("won", 1500000, "2026-04-30")
