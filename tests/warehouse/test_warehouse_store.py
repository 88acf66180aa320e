"""The write path: linking, lineage, unchanged detection and deletes, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, func, select

from warehouse import records as r
from warehouse import schema as t
from warehouse.identity.graph import membership
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.resolve import resolve_full
from warehouse.state import StreamKey, load_cursor
from warehouse.write import store_scan
from warehouse.write.bulk import _bind
from warehouse.write.store import apply_page, joined_hashes, unchanged_ids

KEY = StreamKey("export", "contacts")


def _count(engine: Engine, model: type[t.Base], live: bool = True) -> int:
    q = select(func.count()).select_from(model)
    if live and hasattr(model, "deleted_at"):
        q = q.where(model.deleted_at.is_(None))  # type: ignore[attr-defined]
    with engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def test_people_sharing_an_email_stay_two_records_until_the_resolver_links_them(
    engine: Engine,
) -> None:
    a = r.Person(
        source_id="1", full_name="田中 太郎", emails=["T.Tanaka@ABC.co.jp"], payload_hash="x"
    )
    b = r.Person(
        source_id="9",
        full_name="Taro Tanaka",
        emails=["t.tanaka@abc.co.jp", "taro@gmail.com"],
        payload_hash="y",
    )
    with engine.begin() as conn:
        apply_page(conn, KEY, records=[a], cursor={"n": 1})
        apply_page(conn, StreamKey("crm", "contacts"), records=[b], cursor={"n": 1})
    assert _count(engine, t.Person) == 2
    assert _count(engine, t.PersonEmail) == 3
    resolve_full(engine, MatchSettings())
    with engine.connect() as conn:
        pids = [int(i) for (i,) in conn.execute(select(t.Person.id))]
        assert len(set(membership(conn, "person", pids).values())) == 1


def test_org_variants_are_records_that_resolve_to_one_company(engine: Engine) -> None:
    recs = [
        r.Person(
            source_id=str(i),
            emails=[f"p{i}@abc.co.jp"],
            organization=r.OrgRef(name=n),
            payload_hash="h",
        )
        for i, n in enumerate(["株式会社ABC", "(株)ＡＢＣ", "ABC Co., Ltd."])
    ]
    with engine.begin() as conn:
        apply_page(conn, KEY, records=recs, cursor=None)
    assert _count(engine, t.Organization) == 3
    resolve_full(engine, MatchSettings())
    with engine.connect() as conn:
        oids = [int(i) for (i,) in conn.execute(select(t.Organization.id))]
        assert len(set(membership(conn, "organization", oids).values())) == 1


def test_cursor_commits_with_rows_and_unchanged_rows_are_detected(engine: Engine) -> None:
    p = r.Person(source_id="1", emails=["a@b.co.jp"], payload_hash="h1")
    with engine.begin() as conn:
        apply_page(conn, KEY, records=[p], cursor={"offset": 1})
    with engine.connect() as conn:
        assert load_cursor(conn, KEY) == {"offset": 1}
        assert unchanged_ids(conn, KEY, {"1": "h1"}) == {"1"}
        assert unchanged_ids(conn, KEY, {"1": "h2"}) == set()


def test_vanished_source_row_marks_entity_deleted_only_without_other_sources(
    engine: Engine,
) -> None:
    p = r.Person(source_id="1", emails=["a@b.co.jp"], payload_hash="h")
    act = r.Activity(
        source_id="m",
        key="mail:<m@x>",
        kind="email",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        participants=[r.Participant(email="a@b.co.jp", role="from")],
        payload_hash="h",
    )
    with engine.begin() as conn:
        apply_page(conn, KEY, records=[p], cursor=None)
        apply_page(conn, StreamKey("crm", "contacts"), records=[p], cursor=None)
        apply_page(conn, StreamKey("mail", "inbox"), records=[act], cursor=None)
        apply_page(conn, KEY, deleted=["1"], cursor=None)
    # Each source's record is its own row: the export's dies, the CRM's and the mail
    # participant's stay.
    assert _count(engine, t.Person) == 2
    with engine.begin() as conn:
        apply_page(conn, StreamKey("crm", "contacts"), deleted=["1"], cursor=None)
    assert _count(engine, t.Person) == 1


def test_deal_stage_changes_are_kept(engine: Engine) -> None:
    d1 = r.Deal(source_id="D1", name="案件", stage="提案", payload_hash="a")
    d2 = d1.model_copy(update={"stage": "交渉", "payload_hash": "b"})
    with engine.begin() as conn:
        apply_page(conn, KEY, records=[d1], cursor=None)
        apply_page(conn, KEY, records=[d2], cursor=None)
        apply_page(conn, KEY, records=[d2], cursor=None)
    with engine.connect() as conn:
        stages = (
            conn.execute(select(t.DealStageHistory.stage).order_by(t.DealStageHistory.id))
            .scalars()
            .all()
        )
    assert stages == ["提案", "交渉"]


def test_normalize_email_is_idempotent_on_trailing_dots() -> None:
    """Regression: 'a@b.' normalised to 'a@b', which normalize_email itself rejects."""
    from warehouse.identity.keys.normalize import normalize_email

    assert normalize_email("a@b.") is None
    assert normalize_email("T@ABC.co.jp.") == "t@abc.co.jp"
    for raw in ("a@b.", "x@y.co.jp.", "Ｔａｒｏ@ＡＢＣ.co.jp"):
        n = normalize_email(raw)
        assert n is None or normalize_email(n) == n


def test_a_reread_row_rewrites_only_what_changed(engine: Engine) -> None:
    """A changed source row (a contact's title): its person row and addresses are what the
    source says now; its company row, untouched, keeps its ``updated_at``; each lineage
    row stays the same row with the new hash; a deleted row's lineage comes back live."""
    org = r.Organization(source_id="1", name="株式会社ABC", payload_hash="h1")
    p = r.Person(
        source_id="1",
        family_name="田中",
        title="課長",
        emails=["a@abc.co.jp", "b@abc.co.jp"],
        phones=["+81312345678"],
        organization=r.OrgRef(name="株式会社ABC"),
        payload_hash="h1",
    )
    t0, t1 = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC)
    sr = t.SourceRecord
    lineage = select(sr.entity, sr.id, sr.payload_hash, sr.first_seen, sr.deleted_at).order_by(
        sr.entity
    )
    stamps = select(t.Organization.updated_at, t.Person.updated_at).join(
        t.Person, t.Person.organization_id == t.Organization.id
    )
    with engine.begin() as conn:
        apply_page(conn, KEY, records=[org, p], cursor=None, seen_at=t0)
        apply_page(conn, KEY, deleted=["1"], cursor=None)
    with engine.connect() as conn:
        before = conn.execute(lineage).all()
        org_at, person_at = conn.execute(stamps).one()
    changed = p.model_copy(
        update={"title": "部長", "emails": ["c@abc.co.jp", "a@abc.co.jp"], "payload_hash": "h2"}
    )
    with engine.begin() as conn:
        apply_page(
            conn,
            KEY,
            records=[org.model_copy(update={"payload_hash": "h2"}), changed],
            cursor=None,
            seen_at=t1,
        )
    with engine.connect() as conn:
        after = conn.execute(lineage).all()
        org_at2, person_at2 = conn.execute(stamps).one()
        emails = conn.execute(select(t.PersonEmail.email).order_by("email")).scalars().all()
        phones = conn.execute(select(t.PersonPhone.phone)).scalars().all()
        title = conn.execute(select(t.Person.title)).scalar_one()
    assert [(e, i, fs) for e, i, _, fs, _ in after] == [(e, i, fs) for e, i, _, fs, _ in before]
    assert all(d is not None for *_, d in before)
    assert [(h, d) for _, _, h, _, d in after] == [("h2", None), ("h2", None)]
    assert org_at2 == org_at and person_at2 > person_at
    assert (title, phones) == ("部長", ["+81312345678"])
    assert emails == ["a@abc.co.jp", "c@abc.co.jp"]  # one kept where it was, one new
    assert _count(engine, t.Organization) == 1 and _count(engine, t.Person) == 1


def test_joined_hashes_cover_every_lineage_row_whatever_the_batch(engine: Engine) -> None:
    """Batches of 2 rows: every stored (hash, live) comes back, an id with more rows than
    a batch (a recurring meeting's occurrences) included; rows without a hash do not."""
    sr = t.table(t.SourceRecord)
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {"sid": sid, "eid": eid, "h": f"{n:032x}", "dead": dead}
        for n, (sid, eid, dead) in enumerate(
            [("a", 1, False), ("b", 2, True), ("b", 3, False), ("c", 4, False)]
            + [("d", 10 + i, i == 2) for i in range(5)]
            + [("e", 20, False)]
        )
    ]
    with engine.begin() as conn:
        conn.execute(
            sr.insert(),
            [
                {
                    "connector": KEY.connector,
                    "stream": KEY.stream,
                    "source_id": x["sid"],
                    "entity": "person",
                    "entity_id": x["eid"],
                    "payload_hash": x["h"],
                    "first_seen": ts,
                    "last_seen": ts,
                    "deleted_at": ts if x["dead"] else None,
                }
                for x in rows
            ]
            + [
                {
                    "connector": KEY.connector,
                    "stream": KEY.stream,
                    "source_id": "ref:x",
                    "entity": "organization",
                    "entity_id": 99,
                    "payload_hash": "",
                    "first_seen": ts,
                    "last_seen": ts,
                    "deleted_at": None,
                }
            ],
        )
    with engine.connect() as conn:
        for physical in (False, True, None):
            for batch in (1, 2, 3, 100):
                got: set[tuple[str, bool]] = set()
                for live, n, dead, n_dead in joined_hashes(
                    conn, KEY, batch=batch, physical=physical
                ):
                    assert (len(live), len(dead)) == (32 * n, 32 * n_dead)
                    got |= {(live[i : i + 32], True) for i in range(0, len(live), 32)}
                    got |= {(dead[i : i + 32], False) for i in range(0, len(dead), 32)}
                assert got == {(x["h"], not x["dead"]) for x in rows}, (physical, batch)


def test_joined_hashes_walk_by_key_when_the_stream_is_a_small_share(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another stream holding most lineage rows: the stream's own hashes come back by
    either walk, and the chosen one is the key walk (reading the other stream's rows in
    physical order would cost more than the random reads it saves). On PostgreSQL the
    share is sampled (``TABLESAMPLE``) once a table is past the size read whole."""
    monkeypatch.setattr(store_scan, "_PG_SMALL_BLOCKS", 0)
    sr = t.table(t.SourceRecord)
    ts = datetime(2026, 1, 1, tzinfo=UTC)

    def row(stream: str, sid: str, h: str) -> dict[str, object]:
        return {
            "connector": KEY.connector,
            "stream": stream,
            "source_id": sid,
            "entity": "person",
            "entity_id": None,
            "payload_hash": h,
            "first_seen": ts,
            "last_seen": ts,
            "deleted_at": None,
        }

    mine = [f"{n:032x}" for n in range(3)]
    with engine.begin() as conn:
        conn.execute(sr.insert(), [row("other", f"o{n}", f"{n + 100:032x}") for n in range(60)])
        conn.execute(sr.insert(), [row(KEY.stream, f"m{n}", h) for n, h in enumerate(mine)])
    with engine.connect() as conn:
        mostly = (
            store_scan._mostly_this_stream
            if conn.dialect.name == "sqlite"
            else store_scan._pg_mostly_this_stream
        )
        assert not mostly(conn, KEY)
        assert mostly(conn, StreamKey(KEY.connector, "other"))
        for physical in (False, True, None):
            joined = "".join(live for live, *_ in joined_hashes(conn, KEY, physical=physical))
            assert sorted(joined[i : i + 32] for i in range(0, len(joined), 32)) == mine


def test_a_value_equal_only_to_python_is_still_a_change(engine: Engine) -> None:
    """``True == 1`` in Python; in a JSON cell they differ, so the row is written."""
    org = r.Organization(source_id="1", name="ABC", attributes={"n": 1}, payload_hash="h1")
    with engine.begin() as conn:
        apply_page(conn, KEY, records=[org], cursor=None)
        apply_page(
            conn,
            KEY,
            records=[org.model_copy(update={"attributes": {"n": True}, "payload_hash": "h2"})],
            cursor=None,
        )
    with engine.connect() as conn:
        assert conn.execute(select(t.Organization.attributes)).scalar_one() == {"n": True}
        assert isinstance(conn.execute(select(t.Organization.attributes)).scalar_one()["n"], bool)


def test_bound_timestamps_are_processed_once_per_equal_value_and_column() -> None:
    """``bulk._bind``: equal instants (distinct objects, other zones) share one processed
    value per column; every other value is processed as given."""
    calls: list[object] = []

    def proc(v: object) -> object:
        calls.append(v)
        return ("p", v.astimezone(UTC) if isinstance(v, datetime) else v)

    jst = timezone(timedelta(hours=9))
    a = datetime(2026, 1, 1, 9, tzinfo=jst)
    same = datetime(2026, 1, 1, 0, tzinfo=UTC)
    other = datetime(2026, 1, 2, tzinfo=UTC)
    rows = [(a, {"k": 1}), (same, {"k": 1}), (other, "x"), (a, None)]
    out = _bind(rows, [(0, proc), (1, proc)])
    assert out == [[proc(v) for v in row] for row in rows]
    calls.clear()
    _bind(rows, [(0, proc), (1, proc)])
    assert sum(isinstance(v, datetime) for v in calls) == 2  # a (= same) and other
    assert len(calls) == 2 + len(rows)
