"""The identity commands as an admin uses them, the identity config, and the flow after sync."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select
from typer.testing import CliRunner

from flows.cli.main import app
from flows.config import load
from flows.identity.config import identity_config, settings_for
from flows.runtime import engine_for
from kizuna.errors import ConfigError
from warehouse import records as r
from warehouse import schema as t
from warehouse.identity import schema as ids
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.resolve import resolve_full
from warehouse.state import StreamKey
from warehouse.write.store import apply_page

runner = CliRunner()


def _ws(tmp_path: Path, identity: dict[str, Any] | None = None, **extra: Any) -> Path:
    data: dict[str, Any] = {
        "company": {"name": "株式会社テスト", "domains": ["kizuna-demo.co.jp"]},
        "warehouse": {"url": "sqlite:///wh.db"},
        **extra,
    }
    if identity is not None:
        data["identity"] = identity
    p = tmp_path / "kizuna.yaml"
    p.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return p


def _seed(ws_file: Path, settings: MatchSettings | None = None) -> None:
    engine = engine_for(load(ws_file).warehouse_url)
    with engine.begin() as conn:
        apply_page(
            conn,
            StreamKey("mail", "contacts"),
            records=[
                r.Person(
                    source_id="m1",
                    full_name="田中 太郎",
                    emails=["t.tanaka@abc.co.jp"],
                    phones=["090-1234-5678"],
                    organization=r.OrgRef(name="株式会社ABC"),
                ),
                r.Person(source_id="m2", full_name="佐藤 花子", emails=["hanako@xyz.co.jp"]),
            ],
            cursor=None,
        )
        apply_page(
            conn,
            StreamKey("cards", "people"),
            records=[
                r.Person(
                    source_id="c1",
                    full_name="TANAKA Taro",
                    phones=["+81 90 1234 5678"],
                    title="部長",
                    organization=r.OrgRef(name="ABC Co., Ltd."),
                ),
                r.Person(source_id="c2", full_name="サトウ ハナコ", title="課長"),
            ],
            cursor=None,
        )
        apply_page(
            conn,
            StreamKey("mail", "messages"),
            records=[
                r.Activity(
                    source_id="msg1",
                    key="mail:<1@x>",
                    kind="email",
                    occurred_at="2026-11-01T10:00:00+09:00",
                    direction="inbound",
                    subject="お見積りの件",
                    participants=[r.Participant(email="t.tanaka@abc.co.jp", role="from")],
                ),
                r.Deal(
                    source_id="d1",
                    name="ABC 導入案件",
                    organization=r.OrgRef(name="株式会社ABC"),
                    stage="提案",
                    amount=1200000,
                ),
            ],
            cursor=None,
        )
    resolve_full(engine, settings or MatchSettings())


def test_customer_show_is_the_360_view(tmp_path: Path) -> None:
    ws_file = _ws(tmp_path)
    _seed(ws_file)
    out = runner.invoke(app, ["customer", "show", "T.Tanaka@ABC.co.jp", "-w", str(ws_file)])
    assert out.exit_code == 0, out.output
    text = out.output
    for expected in (
        "(#1) · 3 records",  # the card, the CRM contact and the mail participant
        "cards/people",
        "mail/contacts",
        "+819012345678",
        "お見積りの件",
        "ABC 導入案件",
        "score",
    ):
        assert expected in text, expected
    as_json = runner.invoke(app, ["customer", "show", "3", "--json", "-w", str(ws_file)])
    assert as_json.exit_code == 0 and '"id": 1' in as_json.output
    public = json.loads(as_json.output)["public_id"]
    assert public.startswith("P-")
    by_public = runner.invoke(app, ["customer", "show", public, "--json", "-w", str(ws_file)])
    assert by_public.exit_code == 0 and json.loads(by_public.output)["id"] == 1
    missing = runner.invoke(app, ["customer", "show", "nobody@nowhere.jp", "-w", str(ws_file)])
    assert missing.exit_code == 1 and "no person has the address" in missing.output


def test_review_list_accept_and_pins_from_the_cli(tmp_path: Path) -> None:
    ws_file = _ws(tmp_path)
    _seed(ws_file)
    listed = runner.invoke(app, ["review", "list", "-w", str(ws_file)])
    assert listed.exit_code == 0 and "佐藤 花子" in listed.output  # name-only: a review
    engine = engine_for(load(ws_file).warehouse_url)
    with engine.connect() as conn:
        mid = conn.execute(
            select(ids.IdentityMatch.id).where(ids.IdentityMatch.decision == "review")
        ).scalar_one()
    ok = runner.invoke(app, ["review", "accept", str(mid), "--by", "admin", "-w", str(ws_file)])
    assert ok.exit_code == 0 and "now customer 2" in ok.output
    split = runner.invoke(app, ["identity", "split", "2", "4", "-w", str(ws_file)])
    assert split.exit_code == 0, split.output
    never = runner.invoke(app, ["identity", "never-link", "1", "3", "-w", str(ws_file)])
    assert never.exit_code == 0
    with engine.connect() as conn:
        pins = {(p.a_id, p.b_id, p.reason) for p in conn.execute(select(ids.IdentityPin))}
    assert pins == {(2, 4, "split"), (1, 3, "never-link")}
    bad = runner.invoke(app, ["identity", "split", "1", "99", "-w", str(ws_file)])
    assert bad.exit_code == 1 and "not in customer 1" in bad.output


def test_identity_section_is_validated_with_file_field_and_fix(tmp_path: Path) -> None:
    ws = load(_ws(tmp_path, {"thresholds": {"merge": 0.95, "review": 0.7}, "phone_region": "us"}))
    settings, rules = settings_for(ws)
    assert (settings.merge_threshold, settings.review_threshold) == (0.95, 0.7)
    assert settings.phone_region == "US" and rules.rules[0] == "source_priority"
    bad = load(_ws(tmp_path, {"thresholds": {"merge": 0.5, "review": 0.8}}))
    with pytest.raises(ConfigError) as exc:
        identity_config(bad)
    assert exc.value.field == "identity.thresholds"
    assert "review (0.8) is above merge (0.5)" in str(exc.value)
    typo = load(_ws(tmp_path, {"survivorship": {"rules": ["newest"]}}))
    with pytest.raises(ConfigError) as exc2:
        identity_config(typo)
    assert exc2.value.field == "identity.survivorship.rules.0"
    assert "kizuna.yaml" in exc2.value.file


def test_sync_flow_resolves_people_at_the_end(prefect_harness: None, tmp_path: Path) -> None:
    from flows.sync import sync_workspace
    from tests.support.fakes import fakesource

    fakesource.register()
    ws_file = _ws(tmp_path, sources={"people": {"type": "fake", "rows": 40, "page_size": 20}})
    sync_workspace(str(ws_file), None, "run-1")
    engine = engine_for(load(ws_file).warehouse_url)
    with engine.connect() as conn:
        state = conn.execute(
            select(ids.IdentityState.stats).where(ids.IdentityState.entity == "person")
        ).scalar_one()
        people = len(conn.execute(select(t.Person.id)).all())
    assert state["mode"] == "full" and state["records"] == people
    sync_workspace(str(ws_file), None, "run-2")
    with engine.connect() as conn:
        state = conn.execute(
            select(ids.IdentityState.stats).where(ids.IdentityState.entity == "person")
        ).scalar_one()
    assert state["mode"] == "incremental" and state["records"] == 0


def test_a_refused_chain_waits_in_review_with_the_evidence_for_and_against(
    tmp_path: Path,
) -> None:
    # サトウ タケシ and サトウ ケン are two people with one kanji name; a row with the kanji
    # only lists both their mobiles. Its two links would chain them: both wait for an admin,
    # who sees what speaks for each (the mobile) and against (the two readings).
    ws_file = _ws(tmp_path)
    engine = engine_for(load(ws_file).warehouse_url)
    sato = {"family_name": "佐藤", "given_name": "健", "family_name_kana": "サトウ"}
    crowd = [
        r.Person(
            source_id=f"x{k}",
            family_name=f,
            given_name=g,
            family_name_kana=fk,
            given_name_kana=gk,
            emails=[f"p{k}@corp{k % 7}.co.jp"],
            phones=[f"090-0000-{k:04d}"],
        )
        for k, (f, fk, g, gk) in enumerate(
            (f, fk, g, gk)
            for f, fk in (("山田", "ヤマダ"), ("林", "ハヤシ"), ("森", "モリ"), ("木村", "キムラ"))
            for g, gk in (
                ("一郎", "イチロウ"),
                ("花子", "ハナコ"),
                ("陽子", "ヨウコ"),
                ("直子", "ナオコ"),
            )
            for _ in range(3)
        )
    ]
    with engine.begin() as conn:
        apply_page(
            conn,
            StreamKey("crm", "people"),
            records=[
                r.Person(source_id="a", **sato, given_name_kana="タケシ", phones=["090-1111-2222"]),
                r.Person(source_id="c", **sato, given_name_kana="ケン", phones=["080-3333-4444"]),
                *crowd,
            ],
            cursor=None,
        )
        apply_page(
            conn,
            StreamKey("cards", "people"),
            records=[
                r.Person(
                    source_id="b",
                    family_name="佐藤",
                    given_name="健",
                    phones=["090-1111-2222", "080-3333-4444"],
                )
            ],
            cursor=None,
        )
    resolve_full(engine, MatchSettings())
    from warehouse.identity import admin

    with engine.connect() as conn:
        queue = admin.review_queue(conn)
    refused = [q for q in queue if "refused" in (q["fields"] or {})]
    assert len(refused) == 2, queue
    pro, con = admin.for_against(refused[0]["fields"])
    assert "phone:exact" in pro and "would join:" in con and "sato takesi≠sato ken" in con
    listed = runner.invoke(app, ["review", "list", "-w", str(ws_file)], env={"COLUMNS": "400"})
    assert listed.exit_code == 0 and "would join:" in listed.output, listed.output
    assert "phone:exact" in listed.output
