"""kintone write side: key-field upsert, modes, dry run, revision conflicts, partial failures,
and the round trip CRM → store → CRM → store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select, update

from connectors.crm import kintone as kt
from connectors.crm import kintone_write as kw
from flows.engine import run_stream
from flows.sources.crm import kintone as src
from flows.sources.crm.writeback import desired_from_store
from flows.workspace import Company, Workspace
from tests.support.fakes.fake_kintone import BASE, FakeKintone
from warehouse import schema as t

APP = 20
SPEC = kt.AppSpec(app=APP)
TYPES = {"顧客コード": "SINGLE_LINE_TEXT", "会社名": "SINGLE_LINE_TEXT", "スコア": "NUMBER"}


def _fake() -> FakeKintone:
    fake = FakeKintone()
    fake.app(APP, TYPES, unique="顧客コード")
    return fake


def _writes(fake: FakeKintone) -> list[str]:
    return [c for c in fake.calls if c.startswith(("POST /k/v1/records.json", "PUT", "DELETE"))]


def test_upsert_by_key_field_then_a_rerun_writes_nothing() -> None:
    fake = _fake()
    fake.add(APP, {"顧客コード": "C-1", "会社名": "株式会社ABC", "スコア": "10"})
    api = kt.Kintone(fake.client())
    desired = {
        "C-1": {"会社名": "株式会社ABC", "スコア": "80"},
        "C-2": {"会社名": "株式会社XYZ", "スコア": "55"},
    }
    res = kw.sync(api, SPEC, "顧客コード", desired)
    assert res.counts() == {
        "create": 1,
        "update": 1,
        "delete": 0,
        "unchanged": 0,
        "skipped": 0,
        "failed": 0,
    }
    recs = {kt.value(r, "顧客コード"): r for r in fake.apps[APP].records.values()}
    assert (
        kt.value(recs["C-1"], "スコア") == "80" and kt.value(recs["C-2"], "会社名") == "株式会社XYZ"
    )
    fake.calls.clear()
    again = kw.sync(api, SPEC, "顧客コード", desired)
    assert again.counts()["unchanged"] == 2 and not again.outcomes
    assert _writes(fake) == []
    assert len(fake.apps[APP].records) == 2


def test_dry_run_reports_without_writing_and_modes_differ() -> None:
    fake = _fake()
    fake.add(APP, {"顧客コード": "C-1", "会社名": "A", "スコア": "1"})
    fake.add(APP, {"顧客コード": "C-9", "会社名": "Z", "スコア": "9"})
    api = kt.Kintone(fake.client())
    desired = {"C-1": {"スコア": "2"}, "C-2": {"会社名": "B", "スコア": "3"}}
    dry = kw.sync(
        api, SPEC, "顧客コード", desired, "mirror", dry_run=True, scope=["C-1", "C-2", "C-9"]
    )
    assert dry.counts() == {
        "would_create": 1,
        "would_update": 1,
        "would_delete": 1,
        "unchanged": 0,
        "skipped": 0,
        "failed": 0,
    }
    assert _writes(fake) == []
    upd = kw.sync(api, SPEC, "顧客コード", desired, "update_only")
    assert (upd.counts()["update"], upd.skipped) == (1, 1)
    mirror = kw.sync(api, SPEC, "顧客コード", desired, "mirror", scope=["C-9"])
    assert mirror.counts()["delete"] == 1 and mirror.counts()["create"] == 1
    assert sorted(kt.value(r, "顧客コード") for r in fake.apps[APP].records.values()) == [
        "C-1",
        "C-2",
    ]


class _Racing(kt.Kintone):
    """Another user edits the record between our read and our first update."""

    def __init__(self, client: httpx.Client, fake: FakeKintone) -> None:
        super().__init__(client)
        self.fake = fake
        self.raced = False

    def call(
        self, method: str, path: str, what: str, accept: Any = (), **kw: Any
    ) -> httpx.Response:
        if method == "PUT" and not self.raced:
            self.raced = True
            self.fake.edit(APP, 1, {"会社名": "他の人の変更"})
        return super().call(method, path, what, accept, **kw)


def test_a_revision_conflict_is_replanned_from_fresh_state_not_overwritten_blindly() -> None:
    fake = _fake()
    fake.add(APP, {"顧客コード": "C-1", "会社名": "A", "スコア": "1"})
    api = _Racing(fake.client(), fake)
    res = kw.sync(api, SPEC, "顧客コード", {"C-1": {"スコア": "99"}})
    assert not res.failed and res.attempts == 2
    rec = fake.apps[APP].records[1]
    assert (kt.value(rec, "スコア"), kt.value(rec, "会社名")) == ("99", "他の人の変更")
    assert "PUT /k/v1/records.json" in fake.calls


def test_one_bad_record_fails_alone_and_a_rerun_creates_only_it() -> None:
    fake = _fake()
    fake.reject_values = {"壊れた値"}
    api = kt.Kintone(fake.client())
    desired = {
        "C-1": {"会社名": "A"},
        "C-2": {"会社名": "壊れた値"},
        "C-3": {"会社名": "C"},
    }
    res = kw.sync(api, SPEC, "顧客コード", desired)
    assert res.counts()["create"] == 2
    [bad] = res.failed
    assert bad.key == "C-2" and "CB_VA01" in (bad.error or "") and not bad.retryable
    fake.reject_values.clear()  # the admin fixed the app's validation
    again = kw.sync(api, SPEC, "顧客コード", desired)
    assert again.counts()["create"] == 1 and again.counts()["unchanged"] == 2
    assert len(fake.apps[APP].records) == 3


def _ws(tmp: Path) -> Workspace:
    ws = Workspace(company=Company(name="自社", domains=["jisha.co.jp"]))
    return ws.model_copy(update={"path": tmp / "kizuna.yaml"})


def test_round_trip_crm_store_crm_store_and_a_second_write_is_a_noop(
    engine: Engine, tmp_path: Path
) -> None:
    fake = FakeKintone()
    fake.app(
        30,
        {
            "姓": "SINGLE_LINE_TEXT",
            "名": "SINGLE_LINE_TEXT",
            "メール": "LINK",
            "役職": "SINGLE_LINE_TEXT",
        },
    )
    for i, (fam, giv) in enumerate([("山田", "太郎"), ("鈴木", "花子"), ("佐藤", "次郎")]):
        fake.add(30, {"姓": fam, "名": giv, "メール": f"p{i}@abc.co.jp", "役職": "課長"})
    cfg = src.Config.model_validate(
        {
            "type": "kintone",
            "base_url": BASE,
            "apps": {
                "contacts": {
                    "app": 30,
                    "token_env": "KT",
                    "entity": "person",
                    "field_map": {
                        "family_name": "姓",
                        "given_name": "名",
                        "email": "メール",
                        "title": "役職",
                    },
                }
            },
        }
    )
    spec = src.streams("kintone", cfg, _ws(tmp_path), client=fake.client())[0]
    run_stream(engine, spec, "r1")

    # Changed in the store (a correction made in Kizuna)…
    with engine.begin() as conn:
        conn.execute(
            update(t.Person).where(t.Person.primary_email == "p1@abc.co.jp").values(title="部長")
        )
        desired = desired_from_store(conn, "kintone", "contacts", "person", {"title": "役職"})
    assert desired["2"] == {"役職": "部長"}

    # …written back: only the changed record is touched…
    api = kt.Kintone(fake.client())
    res = kw.sync(api, kt.AppSpec(app=30), "$id", desired, "update_only")
    assert res.counts()["update"] == 1 and res.counts()["unchanged"] == 2
    assert kt.value(fake.apps[30].records[2], "役職") == "部長"

    # …read again: the store and the CRM agree…
    res2 = run_stream(engine, spec, "r2")
    assert res2.stats.updated == 1
    with engine.connect() as conn:
        titles = dict(conn.execute(select(t.Person.primary_email, t.Person.title)).all())
        again = desired_from_store(conn, "kintone", "contacts", "person", {"title": "役職"})
    assert titles == {"p0@abc.co.jp": "課長", "p1@abc.co.jp": "部長", "p2@abc.co.jp": "課長"}
    crm = {
        kt.value(r, "$id"): {"役職": kt.value(r, "役職")} for r in fake.apps[30].records.values()
    }
    assert again == crm

    # …and a second write-back is a no-op.
    fake.calls.clear()
    res3 = kw.sync(api, kt.AppSpec(app=30), "$id", again, "update_only")
    assert res3.counts()["update"] == 0 and res3.counts()["unchanged"] == 3
    assert _writes(fake) == []
