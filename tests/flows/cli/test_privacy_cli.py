"""Privacy requests (個人情報保護法 開示・削除) end to end, on SQLite and PostgreSQL.

A workspace with two keyless exports and a Maildir, where one customer (田中 太郎, two rows
and three messages) is everywhere: records, lineage, identity graph, a message only with
staff, a message shared with another customer, a quarantined message, consent evidence, a
bounce on the suppression list, a delivery and its outbox file, a segment, a deal, a
reminder, a 日報 draft (row and file). ``customer disclose`` writes it all in one file;
``customer erase`` leaves nothing but the salted hashes: every column of every table and every
file under the workspace (the SQLite file included) is searched for every written form of
the name, the addresses and the phones. The send path refuses the address; a later sync
holds the person's rows (quarantine with a reason, no content) instead of landing them.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, insert, select

from connectors.mail.outbox import file_name
from flows import config
from flows.engine import run_stream
from flows.sources import registry
from tests.flows.cli.support import kizuna, workspace
from warehouse import schema as t
from warehouse.activation import consent
from warehouse.activation import ledger_schema as ls
from warehouse.activation import segment_schema as ss
from warehouse.identity.crosswalk import public_ids
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.resolve import resolve_full
from warehouse.privacy.schema import PrivacyRequest, PrivacySalt
from warehouse.reporting import schema as rs

ADDR = "taro.tanaka@client-a.co.jp"
ERASED = [
    "田中 太郎",
    "田中\u3000太郎",
    "田中太郎",
    "タナカ タロウ",
    "タナカタロウ",
    ADDR,
    "03-5555-0101",
    "0355550101",
    "+81355550101",
    "090-1234-5678",
    "09012345678",
    "+819012345678",
]
HEADER = "会社名,氏名,フリガナ,メールアドレス,電話番号,部署\r\n"
SALES = (
    HEADER
    + f"クライアントA株式会社,田中\u3000太郎,タナカ タロウ,{ADDR},03-5555-0101,営業部\r\n"
    + "クライアントA株式会社,鈴木\u3000花子,スズキ ハナコ,suzuki@client-a.co.jp,03-5555-0102,総務部\r\n"
    + "クライアントB株式会社,佐藤\u3000健,サトウ ケン,sato@client-b.co.jp,03-6666-0101,\r\n"
)
SUPPORT = (
    HEADER
    + f"クライアントA株式会社,田中\u3000太郎,タナカ タロウ,{ADDR},090-1234-5678,営業部\r\n"
    + "クライアントA株式会社,鈴木\u3000花子,スズキ ハナコ,suzuki@client-a.co.jp,,総務部\r\n"
)


def _mail(n: int, head: str, body: str) -> bytes:
    return (
        f"{head}Date: Tue, 01 Oct 2024 1{n}:00:00 +0900\r\nMessage-ID: <m{n}@client-a.co.jp>\r\n"
        f"Subject: 見積 {n}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"\r\n{body}\r\n"
    ).encode()


def _maildir(root: Path) -> Path:
    box = root / "mail"
    for sub in ("cur", "new", "tmp"):
        (box / sub).mkdir(parents=True)
    msgs = [
        # only the customer and staff: erased whole
        _mail(
            1, f"From: 田中 太郎 <{ADDR}>\r\nTo: rep@ours.co.jp\r\n", "田中です。03-5555-0101まで。"
        ),
        # shared with another customer: kept, without them
        _mail(
            2,
            f"From: rep@ours.co.jp\r\nTo: suzuki@client-a.co.jp\r\nCc: {ADDR}\r\n",
            "鈴木様、田中 太郎様 お世話になります。",
        ),
        # nothing of theirs
        _mail(3, "From: sato@client-b.co.jp\r\nTo: rep@ours.co.jp\r\n", "佐藤です。"),
        # too many recipients: quarantined whole, their name and address in the payload
        _mail(
            4,
            f"From: 田中 太郎 <{ADDR}>\r\nTo: a@x.jp, b@x.jp, c@x.jp, d@x.jp\r\n",
            "一斉送信です。",
        ),
    ]
    for i, m in enumerate(msgs, 1):
        (box / "cur" / f"17277444{i:02d}.M{i}P1.mx:2,S").write_bytes(m)
    return box


def _sync(engine: Engine, ws_file: Path) -> None:
    ws = config.load(ws_file)
    for name in ws.sources:
        for spec in registry.streams(ws, name):
            run_stream(engine, spec, f"run-{name}")
    resolve_full(engine, MatchSettings())


def _customer(engine: Engine) -> tuple[str, list[int]]:
    with engine.connect() as conn:
        ids = public_ids(conn, "person")
        pe = t.PersonEmail
        rows = [
            int(x) for x in conn.execute(select(pe.person_id).where(pe.email == ADDR)).scalars()
        ]
    cid = {ids[r] for r in rows}
    assert len(cid) == 1, cid  # the exports' rows and the mail participant are one customer
    return cid.pop(), rows


def _around(engine: Engine, root: Path, rows: list[int]) -> None:
    """What campaigns, reports and people leave about the customer, through the tables."""
    ts = datetime(2026, 12, 1, tzinfo=UTC)
    mid = "<news-1-p@ours.co.jp>"
    with engine.begin() as conn:
        pid = rows[0]
        consent.record_consent(
            conn,
            consent.ConsentEvent(
                person_id=pid,
                purpose="marketing_mail",
                status="opted_in",
                source="form",
                evidence=f"form 2026-11-01 {ADDR} 田中 太郎",
                at=ts,
            ),
        )
        consent.suppress(
            conn, consent.SuppressionEvent(email=ADDR, reason="bounce", source="dsn", at=ts)
        )
        plan = conn.execute(
            insert(ls.CampaignPlan).returning(ls.CampaignPlan.id),
            {
                "campaign": "news",
                "status": "done",
                "created_at": ts,
                "as_of": ts,
                "config_hash": "x",
                "counts": {},
            },
        ).scalar_one()
        conn.execute(
            insert(ls.PlanEntry),
            {"plan_id": plan, "person_id": pid, "step": 0, "action": "send", "address": ADDR},
        )
        conn.execute(
            insert(ls.Delivery),
            {
                "campaign": "news",
                "person_id": pid,
                "step": 0,
                "channel": "outbox",
                "address": ADDR,
                "message_id": mid,
                "status": "sent",
                "plan_id": plan,
                "created_at": ts,
            },
        )
        conn.execute(
            insert(ss.SegmentMembership), {"segment": "vip", "person_id": pid, "entered_at": ts}
        )
        conn.execute(
            insert(t.Deal),
            {
                "name": "田中 太郎様 案件",
                "person_id": pid,
                "currency": "JPY",
                "status": "open",
                "attributes": {},
                "created_at": ts,
                "updated_at": ts,
            },
        )
        conn.execute(
            insert(ls.Reminder),
            {
                "rule": "follow",
                "subject_kind": "deal",
                "subject_id": 1,
                "instance": "1",
                "status": "open",
                "title": "田中 太郎様へのフォロー",
                "facts": {"contact": "田中 太郎", "phone": "090-1234-5678"},
                "opened_at": ts,
                "message_id": "<r1@ours.co.jp>",
                "delivery": "pending",
            },
        )
        staff = conn.execute(select(t.StaffUser.id)).scalars().first()
        draft = "# 日報\n- 田中 太郎様と打合せ (03-5555-0101)\n- 鈴木 花子様に電話\n"
        conn.execute(
            insert(rs.DailyReport),
            {
                "staff_user_id": staff,
                "date": date(2026, 12, 1),
                "body_md": draft,
                "language": "ja",
                "status": "draft",
                "created_at": ts,
                "updated_at": ts,
            },
        )
    (root / "outbox").mkdir()
    (root / "outbox" / file_name(mid)).write_text(
        f"To: {ADDR}\r\nSubject: news\r\n\r\n田中 太郎様\r\n", encoding="utf-8"
    )
    (root / "outbox" / file_name("<news-1-s@ours.co.jp>")).write_text(
        "To: suzuki@client-a.co.jp\r\nSubject: news\r\n\r\n鈴木 花子様\r\n", encoding="utf-8"
    )
    (root / "reports" / "2026-12-01").mkdir(parents=True)
    (root / "reports" / "2026-12-01" / "rep.md").write_text(draft, encoding="utf-8")


def _dump(engine: Engine) -> dict[str, list[str]]:
    """Every value of every column of every table, as text."""
    md = MetaData()
    with engine.connect() as conn:
        md.reflect(bind=conn)
        out: dict[str, list[str]] = {}
        for tb in md.sorted_tables:
            vals = out.setdefault(tb.name, [])
            for row in conn.execute(select(tb)):
                for v in row:
                    if v is not None:
                        vals.append(json.dumps(v, ensure_ascii=False, default=str))
    return out


def _found(text: str) -> list[str]:
    low = text.lower()
    return [v for v in ERASED if v.lower() in low]


def test_disclose_then_erase_leaves_nothing_but_the_suppression_hash(
    tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "sales.csv").write_text(SALES, encoding="utf-8-sig")
    (tmp_path / "support.csv").write_bytes(SUPPORT.encode("cp932"))
    _maildir(tmp_path)
    ws_file = workspace(
        tmp_path,
        engine,
        monkeypatch,
        sources={
            "sales": {"type": "spreadsheet", "path": "sales.csv"},
            "support": {"type": "spreadsheet", "path": "support.csv"},
            "box": {"type": "mail", "path": "mail", "format": "maildir", "max_recipients": 3},
        },
    )
    _sync(engine, ws_file)
    cid, rows = _customer(engine)
    _around(engine, tmp_path, rows)

    out = kizuna("customer", "disclose", cid, "--by", "窓口 山本", "-w", str(ws_file))
    assert out.exit_code == 0, out.output
    [doc_file] = list((tmp_path / "privacy").glob("*.json"))
    doc = json.loads(doc_file.read_text(encoding="utf-8"))
    assert doc["customer_id"] == cid and len(doc["records"]) >= 3
    assert {s["connector"] for r in doc["records"] for s in r["sources"]} == {
        "sales",
        "support",
        "box",
    }
    assert len(doc["activities"]) == 2 and doc["consent"] and doc["deliveries"]
    assert doc["quarantine"] and doc["suppression"] and doc["segments"] and doc["deals"]
    assert "sales.csv" in doc["files"] and any(f.startswith("outbox/") for f in doc["files"])
    assert _found(doc_file.read_text(encoding="utf-8"))  # it is their data

    # A record synced after the last resolution could be theirs: erase asks for it first.
    with (tmp_path / "support.csv").open("ab") as f:
        f.write(
            "クライアントC株式会社,伊藤\u3000誠,イトウ マコト,ito@client-c.co.jp,,\r\n".encode(
                "cp932"
            )
        )
    run_stream(engine, registry.streams(config.load(ws_file), "support")[0], "run-late")
    out = kizuna("customer", "erase", cid, "--yes", "-w", str(ws_file))
    assert out.exit_code == 2 and "kizuna identity resolve" in out.output, out.output
    resolve_full(engine, MatchSettings())

    out = kizuna("customer", "erase", cid, "--yes", "--by", "窓口 山本", "-w", str(ws_file))
    assert out.exit_code == 0, out.output
    assert "sales.csv" in out.output and "support.csv" in out.output
    assert "could not be compacted" not in out.output  # still at the source

    tables = _dump(engine)
    left = {name: _found(" ".join(vals)) for name, vals in tables.items()}
    assert not any(left.values()), {k: v for k, v in left.items() if v}
    assert any("鈴木" in v for v in tables["person"])  # the others are untouched
    assert any("鈴木 花子様" in v for v in tables["daily_report"])
    assert any("[erased]" in v for v in tables["activity"])  # the shared message, masked
    with engine.connect() as conn:
        sup = conn.execute(select(t.Suppression.email, t.Suppression.reason)).all()
        assert [r for r, why in sup if why == "erased"] and all(
            e.startswith("erased:") for e, _ in sup
        )
        req = conn.execute(select(t.table(PrivacyRequest))).mappings().all()
        assert [r["kind"] for r in req] == ["disclose", "erase"]
        assert all(r["requested_by"] == "窓口 山本" and r["customer_id"] == cid for r in req)
        # The send path consults the hashes: the address is refused on every channel.
        d = consent.may_send(conn, ADDR.upper(), "sales_followup", "outbox")
        assert not d.allowed and "erased" in d.reason

    with engine.connect() as conn:
        secret = conn.execute(select(PrivacySalt.salt)).scalar_one()
    assert secret not in out.output  # the salt is never printed, logged or written out
    sources = {tmp_path / "sales.csv", tmp_path / "support.csv", tmp_path / "mail"}
    for f in sorted(tmp_path.rglob("*")):
        if not f.is_file() or any(f == s or s in f.parents for s in sources):
            continue
        data = f.read_bytes().lower()
        hits = [v for v in ERASED if v.lower().encode() in data]
        assert not hits, (f, hits)
        assert f.name.startswith("wh.db") or secret.encode() not in data
    assert not (tmp_path / "outbox" / file_name("<news-1-p@ours.co.jp>")).exists()
    assert (tmp_path / "outbox" / file_name("<news-1-s@ours.co.jp>")).exists()
    assert "鈴木 花子様" in (tmp_path / "reports/2026-12-01/rep.md").read_text(encoding="utf-8")

    # A later sync: the same rows, a new row and a new message of theirs are held, not landed.
    with (tmp_path / "sales.csv").open("a", encoding="utf-8") as f:
        f.write(f"クライアントA株式会社,田中 太郎,,{ADDR},,新規\r\n")
    (tmp_path / "mail" / "new" / "1727744499.M9P1.mx").write_bytes(
        _mail(9, f"From: 田中 太郎 <{ADDR}>\r\nTo: rep@ours.co.jp\r\n", "また田中です。")
    )
    (tmp_path / "mail" / "new" / "1727744498.M8P1.mx").write_bytes(
        _mail(8, f"From: 田中 太郎 <{ADDR}>\r\nTo: a@x.jp, b@x.jp, c@x.jp, d@x.jp\r\n", "再送")
    )
    _sync(engine, ws_file)
    tables = _dump(engine)
    left = {name: _found(" ".join(vals)) for name, vals in tables.items()}
    assert not any(left.values()), {k: v for k, v in left.items() if v}
    with engine.connect() as conn:
        q = t.Quarantine
        held = conn.execute(
            select(q.connector, q.path, q.payload, q.reason).where(
                q.resolved_at.is_(None), q.reason.startswith("held:")
            )
        ).all()
    # support.csv did not change, so it was not read again; sales.csv was: its old row of
    # theirs and the new one are both held; so are the new messages (one too large to land:
    # refused records of theirs keep no payload either).
    assert sorted(c for c, *_ in held) == ["box", "box", "sales", "sales"]
    assert all(p is None and "privacy request" in why for _, _, p, why in held)
    assert any(path and path.startswith("sales.csv:") for _, path, _, _ in held)
    out = kizuna("quarantine", "--json", "-w", str(ws_file))
    assert out.exit_code == 0, out.output
    assert out.output.count("Remove it at the source") == 4 and not _found(out.output)
