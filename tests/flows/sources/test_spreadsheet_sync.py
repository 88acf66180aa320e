"""Spreadsheet exports through the engine into the warehouse (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from sqlalchemy import Engine, func, select

from connectors.page import Cursor, KnownHashes, Page
from flows.engine import StreamSpec, run_stream
from flows.sources import spreadsheet as src
from flows.workspace import Company, Workspace
from warehouse import schema as t

HEADER = [
    "顧客ID",
    "会社名",
    "氏名",
    "フリガナ",
    "メールアドレス",
    "電話番号",
    "案件名",
    "金額",
    "受注予定日",
]


def _row(i: int, **over: str) -> list[str]:
    base = {
        "顧客ID": f"C{i:03d}",
        "会社名": f"株式会社テスト{i % 3}",
        "氏名": f"田中　太郎{i}",
        "フリガナ": "タナカ タロウ",
        "メールアドレス": f"taro{i}@test{i % 3}.co.jp",
        "電話番号": f"03-1234-{i:04d}",
        "案件名": f"案件①{i}" if i % 2 == 0 else "",
        "金額": "￥1,200,000" if i % 2 == 0 else "",
        "受注予定日": "令和8年1月5日" if i % 2 == 0 else "",
    }
    base.update(over)
    return [base[h] for h in HEADER]


def _write(path: Path, rows: list[list[str]], encoding: str = "cp932") -> None:
    """As Excel saves 'CSV': CRLF, quoted only where needed."""
    buf = io.StringIO()
    csv.writer(buf).writerows([HEADER, *rows])
    path.write_bytes(buf.getvalue().encode(encoding))


def _spec(tmp_path: Path, **cfg: Any) -> StreamSpec:
    ws = Workspace(company=Company(name="我社"), path=tmp_path / "kizuna.yaml")
    config = src.Config.model_validate({"type": "spreadsheet", "path": "export.csv", **cfg})
    return src.streams("customers", config, ws)[0]


def _clusters(engine: Engine, entity: str) -> int:
    """Live customers (or companies) after a full resolve: what the records add up to."""
    from warehouse.identity.graph import membership
    from warehouse.identity.keys.matching import MatchSettings
    from warehouse.identity.resolve import resolve_full

    resolve_full(engine, MatchSettings())
    table = t.table(t.Person if entity == "person" else t.Organization)
    with engine.connect() as conn:
        ids = [
            int(i) for (i,) in conn.execute(select(table.c.id).where(table.c.deleted_at.is_(None)))
        ]
        got = membership(conn, entity, ids)
    return len({got.get(i, i) for i in ids})


def _count(engine: Engine, model: Any, *, live: bool = True) -> int:
    q = select(func.count()).select_from(model)
    if live:
        q = q.where(model.deleted_at.is_(None))
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def _stamps(engine: Engine) -> dict[str, list[Any]]:
    """Every row's updated_at / last_seen: a run that writes nothing leaves them all alone."""
    out: dict[str, list[Any]] = {}
    with engine.connect() as conn:
        for model, col in [
            (t.Organization, t.Organization.updated_at),
            (t.Person, t.Person.updated_at),
            (t.Deal, t.Deal.updated_at),
            (t.SourceRecord, t.SourceRecord.last_seen),
            (t.SyncState, t.SyncState.updated_at),
        ]:
            out[model.__tablename__] = list(conn.execute(select(col).order_by(col)).scalars())
        out["deleted"] = list(
            conn.execute(select(t.Person.id).where(t.Person.deleted_at.is_not(None))).scalars()
        )
    return out


def _last_run(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        run = conn.execute(select(t.SyncRun).order_by(t.SyncRun.id.desc()).limit(1)).one()
    return {
        "status": run.status,
        "inserted": run.inserted,
        "updated": run.updated,
        "unchanged": run.unchanged,
        "deleted": run.deleted,
        "quarantined": run.quarantined,
    }


def test_cp932_export_lands_and_bad_rows_are_quarantined(engine: Engine, tmp_path: Path) -> None:
    rows = [_row(i) for i in range(10)]
    rows[3] = _row(3, メールアドレス="taro3-at-test")  # bad address
    rows[5] = _row(5, 受注予定日="2026/02/30", 案件名="x", 金額="1")  # no such date
    f = tmp_path / "export.csv"
    _write(f, rows)
    with f.open("ab") as out:
        out.write("C999,短すぎる行\r\n".encode("cp932"))
    res = run_stream(engine, _spec(tmp_path), "r1")
    assert res.stats.quarantined == 3
    assert _count(engine, t.Person) == 8
    assert _count(engine, t.Organization) == 8  # each landed row's own company record
    assert _clusters(engine, "organization") == 3  # 株式会社テスト0..2, linked by the resolver
    assert _count(engine, t.Deal) == 5  # rows 0, 2, 4, 6, 8
    with engine.connect() as conn:
        reasons = dict(conn.execute(select(t.Quarantine.source_id, t.Quarantine.reason)).all())
        name = conn.execute(
            select(t.Person.family_name, t.Person.given_name_kana).where(
                t.Person.primary_email == "taro0@test0.co.jp"
            )
        ).one()
        deal = conn.execute(select(t.Deal.name, t.Deal.amount).order_by(t.Deal.id)).first()
    assert reasons["C003"] == "メールアドレス: not an email address: 'taro3-at-test'"
    assert reasons["C005"] == "受注予定日: no such date: '2026/02/30'"
    assert reasons["C999"].startswith("line 12: 2 fields")
    assert tuple(name) == ("田中", "タロウ")
    assert deal is not None and deal[0] == "案件①0" and deal[1] == 1200000
    assert _last_run(engine)["status"] == "completed"


def test_unchanged_file_rerun_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    f = tmp_path / "export.csv"
    _write(f, [_row(i) for i in range(20)])
    run_stream(engine, _spec(tmp_path), "r1")
    before = _stamps(engine)
    res = run_stream(engine, _spec(tmp_path), "r2")
    assert (res.pages, res.read) == (0, 0)
    os.utime(f)  # touched (mtime moves) but identical: still nothing to do
    run_stream(engine, _spec(tmp_path), "r3")
    assert _stamps(engine) == before
    assert _last_run(engine) == {
        "status": "completed",
        "inserted": 0,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "quarantined": 0,
    }


def test_reordered_file_is_read_but_every_row_is_skipped(engine: Engine, tmp_path: Path) -> None:
    f = tmp_path / "export.csv"
    rows = [_row(i) for i in range(20)]
    _write(f, rows)
    run_stream(engine, _spec(tmp_path), "r1")
    before = _stamps(engine)
    _write(f, rows[::-1])
    res = run_stream(engine, _spec(tmp_path), "r2")
    assert res.read == 20 and res.unchanged == 20
    after = _stamps(engine)
    assert {k: v for k, v in after.items() if k != "sync_state"} == {
        k: v for k, v in before.items() if k != "sync_state"
    }
    assert _last_run(engine)["unchanged"] == 20 and _last_run(engine)["updated"] == 0


def test_changed_rows_only_are_applied(engine: Engine, tmp_path: Path) -> None:
    f = tmp_path / "export.csv"
    rows = [_row(i) for i in range(20)]
    _write(f, rows)
    run_stream(engine, _spec(tmp_path), "r1")
    with engine.connect() as conn:
        stamps = dict(conn.execute(select(t.Person.primary_email, t.Person.updated_at)).all())
    rows[7] = _row(7, 氏名="田中 次郎")
    _write(f, rows)
    res = run_stream(engine, _spec(tmp_path), "r2")
    assert res.read == 20 and res.unchanged == 19
    assert res.stats.inserted == 0
    with engine.connect() as conn:
        now = dict(conn.execute(select(t.Person.primary_email, t.Person.updated_at)).all())
        given = conn.execute(
            select(t.Person.given_name).where(t.Person.primary_email == "taro7@test1.co.jp")
        ).scalar_one()
    assert given == "次郎"
    assert [e for e in now if now[e] != stamps[e]] == ["taro7@test1.co.jp"]


def test_vanished_row_marked_deleted_unless_configured_to_keep(
    engine: Engine, tmp_path: Path
) -> None:
    f = tmp_path / "export.csv"
    rows = [_row(i) for i in range(6)]
    _write(f, rows)
    run_stream(engine, _spec(tmp_path), "r1")
    _write(f, rows[:4] + rows[5:])  # C004 (a person and a deal) is gone
    res = run_stream(engine, _spec(tmp_path, on_missing="keep"), "r2")
    assert res.stats.deleted == 0 and _count(engine, t.Person) == 6
    os.utime(f, ns=(1, 1))  # new file identity so the next run reads again
    _write(f, [*rows[:4], *rows[5:], [*_row(4)[:1], "壊れた行"]])  # C004 back, but broken
    res = run_stream(engine, _spec(tmp_path), "r3")
    assert res.stats.deleted == 0  # present though broken: quarantined, not vanished
    _write(f, rows[:4] + rows[5:])
    res = run_stream(engine, _spec(tmp_path), "r4")
    assert res.stats.deleted == 3  # its organization, person and deal lineage
    assert _count(engine, t.Person) == 5
    assert _count(engine, t.Deal) == 2
    with engine.connect() as conn:
        gone = conn.execute(
            select(t.Person.primary_email).where(t.Person.deleted_at.is_not(None))
        ).scalar_one()
    assert gone == "taro4@test1.co.jp"
    assert _count(engine, t.Organization) == 5  # its company record went with it
    _write(f, rows)
    run_stream(engine, _spec(tmp_path), "r5")
    assert _count(engine, t.Person) == 6  # it came back


def test_duplicate_ids_quarantined_first_one_lands(engine: Engine, tmp_path: Path) -> None:
    f = tmp_path / "export.csv"
    _write(f, [_row(1), _row(2), _row(1, 氏名="別人 です", メールアドレス="other@x.co.jp")])
    res = run_stream(engine, _spec(tmp_path), "r1")
    assert res.stats.quarantined == 1
    with engine.connect() as conn:
        q = conn.execute(select(t.Quarantine.source_id, t.Quarantine.reason)).one()
        emails = set(conn.execute(select(t.Person.primary_email)).scalars())
    assert tuple(q) == ("C001", "duplicate id 'C001' in one pass")
    assert emails == {"taro1@test1.co.jp", "taro2@test2.co.jp"}


def test_crash_mid_file_then_rerun_ends_like_an_uninterrupted_run(
    engine: Engine, tmp_path: Path
) -> None:
    f = tmp_path / "export.csv"
    _write(f, [_row(i) for i in range(25)])
    spec = _spec(tmp_path, page_size=10)

    def crashing(cursor: Cursor | None, known: KnownHashes | None = None) -> Iterator[Page[Any]]:
        pages = spec.read(cursor) if known is None else spec.read_known(cursor, known)  # type: ignore[misc]
        for n, page in enumerate(pages):
            if n == 1:
                raise RuntimeError("killed")
            yield page

    from dataclasses import replace

    with pytest.raises(RuntimeError):
        run_stream(engine, replace(spec, read=crashing, read_known=crashing), "r1")
    assert _count(engine, t.Person) == 10
    res = run_stream(engine, spec, "r2")
    assert res.unchanged == 10 and res.read == 25
    assert _count(engine, t.Person) == 25
    assert run_stream(engine, spec, "r3").read == 0


def test_xlsx_export_syncs(engine: Engine, tmp_path: Path) -> None:
    f = tmp_path / "export.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["ID", "Company", "Name", "Email", "Deal", "Amount", "Close Date", "Rank"])
    ws.append([1, "Acme Inc.", "Jane Doe", "jane@acme.com", "Renewal", 5000, None, "A"])
    ws.append([2, "Acme Inc.", "John Roe", "john@acme.com", None, None, None, None])
    wb.save(f)
    res = run_stream(engine, _spec(tmp_path, path="export.xlsx"), "r1")
    assert res.stats.quarantined == 0
    assert _count(engine, t.Person) == 2 and _count(engine, t.Organization) == 2
    assert _clusters(engine, "organization") == 1
    with engine.connect() as conn:
        attrs = conn.execute(
            select(t.Person.attributes).where(t.Person.primary_email == "jane@acme.com")
        ).scalar_one()
    assert attrs == {"Rank": "A"}
    assert run_stream(engine, _spec(tmp_path, path="export.xlsx"), "r2").read == 0


def test_payload_hash_is_the_digest_of_the_documented_json() -> None:
    """The fast (orjson) hash must equal the json.dumps definition, or every stored row
    would look changed after an upgrade."""
    import hashlib
    import json
    from datetime import UTC, date, datetime
    from decimal import Decimal

    from flows.engine import payload_hash

    def reference(raw: dict[Any, Any], fp: str) -> str:
        blob = json.dumps(
            raw, ensure_ascii=False, sort_keys=True, default=str, separators=(",", ":")
        )
        return hashlib.blake2b((fp + blob).encode(), digest_size=16).hexdigest()

    rows: list[dict[Any, Any]] = [
        dict(zip(HEADER, _row(1), strict=True)),
        {"備考": '改行\nタブ\t引用"\\ \x1f \u2028 😀', "z": {"b": 1, "a": [1, 2.5, None, True]}},
        {
            "at": datetime(2026, 1, 5, 9, 30, tzinfo=UTC),
            "d": date(2026, 1, 5),
            "n": Decimal("1.20"),
        },
        {1: "int key", 2: "b"},
        {"big": 10**20},
    ]
    for raw in rows:
        assert payload_hash(raw, "fp") == reference(raw, "fp")


def test_sqlite_executemany_shortcut_stores_what_execute_stores(engine: Engine) -> None:
    """The SQLite shortcut in ``store.executemany`` must write the very values SQLAlchemy
    writes (timestamps, dates, JSON, decimals, NULLs), or reads would parse them differently."""
    from datetime import UTC, date, datetime
    from decimal import Decimal

    from sqlalchemy import insert

    from warehouse.write.bulk import executemany

    ts = datetime(2026, 1, 5, 9, 30, 15, 123456, tzinfo=UTC)

    def rows(offset: int) -> list[dict[str, Any]]:
        return [
            {
                "name": f"案件{offset + i}",
                "stage": None if i % 2 else "提案",
                "amount": Decimal("1200000.50") if i % 3 else None,
                "currency": "JPY",
                "expected_close": date(2026, 1, i + 1),
                "status": "open",
                "attributes": {"ランク": "A", "n": i} if i % 2 else {},
                "created_at": ts,
                "updated_at": ts,
            }
            for i in range(10)
        ]

    with engine.begin() as conn:
        executemany(conn, insert(t.Deal), rows(0))
        conn.execute(insert(t.Deal), rows(10))
    cols = [
        t.Deal.stage,
        t.Deal.amount,
        t.Deal.expected_close,
        t.Deal.attributes,
        t.Deal.created_at,
    ]
    with engine.connect() as conn:
        got = conn.execute(select(t.Deal.name, *cols).order_by(t.Deal.id)).all()
        raw = conn.exec_driver_sql("SELECT created_at, attributes FROM deal ORDER BY id").all()
    fast, slow = got[:10], got[10:]
    assert [tuple(r)[1:] for r in fast] == [tuple(r)[1:] for r in slow]
    assert raw[:10] == raw[10:]  # byte for byte as the driver sees them


def test_company_only_rows_keep_their_unmapped_columns(engine: Engine, tmp_path: Path) -> None:
    f = tmp_path / "export.csv"
    f.write_text(
        "取引先ID,会社名,業種,取引区分\nA1,株式会社いろは,卸売業,特約店\n", encoding="utf-8"
    )
    run_stream(engine, _spec(tmp_path, key="取引先ID"), "r1")
    with engine.connect() as conn:
        org = conn.execute(select(t.Organization.industry, t.Organization.attributes)).one()
    assert tuple(org) == ("卸売業", {"取引区分": "特約店"})


def test_rows_sharing_a_company_keep_their_own_values(engine: Engine, tmp_path: Path) -> None:
    """Several rows naming one company: each row's record says what that row said (no value
    overwritten by another row's), and the resolver makes them one company."""
    f = tmp_path / "export.csv"
    f.write_text(
        "顧客ID,会社名,業種,住所,氏名,メールアドレス\n"
        "1,株式会社いろは,卸売業,,田中 一郎,ichiro@iroha.co.jp\n"
        "2,株式会社いろは,,東京都千代田区,田中 二郎,jiro@iroha.co.jp\n"
        "3,株式会社いろは,小売業,,田中 三郎,saburo@iroha.co.jp\n",
        encoding="utf-8",
    )
    run_stream(engine, _spec(tmp_path), "r1")
    with engine.connect() as conn:
        orgs = conn.execute(select(t.Organization.industry, t.Organization.address)).all()
    assert sorted((tuple(o) for o in orgs), key=str) == sorted(
        [("卸売業", None), (None, "東京都千代田区"), ("小売業", None)], key=str
    )
    assert _clusters(engine, "organization") == 1


def test_a_sparse_change_is_written_in_one_batch_and_survives_a_crash(
    engine: Engine, tmp_path: Path
) -> None:
    """Pages with a changed row or two are written together with the cursor after the last
    of them; a crash before that write leaves the old cursor, and the rerun ends the same."""
    f = tmp_path / "export.csv"
    rows = [_row(i) for i in range(60)]
    _write(f, rows)
    spec = _spec(tmp_path, page_size=10)
    run_stream(engine, spec, "r1")
    rows[3] = _row(3, 氏名="田中 三郎")
    rows[45] = _row(45, 氏名="田中 四十五")
    _write(f, rows)

    def crashing(cursor: Cursor | None, known: KnownHashes | None = None) -> Iterator[Page[Any]]:
        pages = spec.read(cursor) if known is None else spec.read_known(cursor, known)  # type: ignore[misc]
        for n, page in enumerate(pages):
            if n == 5:
                raise RuntimeError("killed")
            yield page

    from dataclasses import replace

    with pytest.raises(RuntimeError):
        run_stream(engine, replace(spec, read=crashing, read_known=crashing), "r2")
    with engine.connect() as conn:
        given = dict(conn.execute(select(t.Person.primary_email, t.Person.given_name)).all())
        runs = conn.execute(select(t.SyncRun.unchanged).where(t.SyncRun.run_id == "r2")).all()
    assert given["taro3@test0.co.jp"] == "太郎3"  # its page was read, not yet written
    assert runs == [(0,)]
    res = run_stream(engine, spec, "r3")
    assert res.read == 60 and res.unchanged == 58 and res.stats.updated > 0
    with engine.connect() as conn:
        given = dict(conn.execute(select(t.Person.primary_email, t.Person.given_name)).all())
        (unchanged,) = conn.execute(
            select(t.SyncRun.unchanged).where(t.SyncRun.run_id == "r3")
        ).one()
    assert given["taro3@test0.co.jp"] == "三郎"
    assert given["taro45@test0.co.jp"] == "四十五"
    assert unchanged == 58
