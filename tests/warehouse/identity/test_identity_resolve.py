"""Resolution through the warehouse: rules, stable ids, aliases, pins, review, incremental."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, update

from warehouse import records as r
from warehouse import schema as t
from warehouse.identity import admin as adm
from warehouse.identity import graph as graph
from warehouse.identity import resolve as rs
from warehouse.identity import schema as ids
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.resolve import resolve_full, resolve_incremental
from warehouse.state import StreamKey, now
from warehouse.write.store import apply_page

S = MatchSettings()
MAIL = StreamKey("mail", "contacts")
CARDS = StreamKey("cards", "people")
CRM = StreamKey("salesforce", "contacts")


def _put(engine: Engine, key: StreamKey, *people: r.Person) -> list[int]:
    with engine.begin() as conn:
        apply_page(conn, key, records=list(people), cursor=None)
        got: list[int] = []
        for p in people:
            eid = conn.execute(
                select(t.SourceRecord.entity_id).where(
                    t.SourceRecord.connector == key.connector,
                    t.SourceRecord.source_id == p.source_id,
                    t.SourceRecord.entity == "person",
                )
            ).scalar_one()
            assert eid is not None
            got.append(eid)
    return got


def _person(sid: str, **kw: Any) -> r.Person:
    return r.Person(source_id=sid, payload_hash=f"h{sid}{len(kw)}", **kw)


def _cluster(engine: Engine, rid: int) -> int:
    with engine.connect() as conn:
        return graph.resolve_id(conn, "person", rid)


def _members(engine: Engine) -> dict[int, int]:
    with engine.connect() as conn:
        return {
            int(a): int(b)
            for a, b in conn.execute(
                select(ids.IdentityMember.record_id, ids.IdentityMember.cluster_id).where(
                    ids.IdentityMember.entity == "person"
                )
            )
        }


def _tanaka(engine: Engine) -> list[int]:
    """The issue's 田中 太郎: mail, a business card and Salesforce, three rows in the store."""
    a = _put(
        engine,
        MAIL,
        _person(
            "m1",
            full_name="田中 太郎",
            emails=["t.tanaka@abc.co.jp"],
            organization=r.OrgRef(name="株式会社ABC"),
        ),
    )
    b = _put(
        engine,
        CARDS,
        _person(
            "c1",
            full_name="TANAKA Taro",
            phones=["090-1234-5678"],
            title="部長",
            organization=r.OrgRef(name="ABC Co., Ltd."),
        ),
    )
    c = _put(
        engine,
        CRM,
        _person(
            "s1",
            family_name="田中",
            given_name="太郎",
            family_name_kana="ﾀﾅｶ",
            given_name_kana="ﾀﾛｳ",
            phones=["+81 90 1234 5678"],
            title="営業部長",
            organization=r.OrgRef(name="(株)ＡＢＣ"),
        ),
    )
    return [*a, *b, *c]


def test_one_person_from_three_sources_becomes_one_customer(engine: Engine) -> None:
    rows = _tanaka(engine)
    _put(engine, MAIL, _person("m2", full_name="鈴木 一郎", emails=["suzuki@abc.co.jp"]))
    assert len(set(rows)) == 3  # the store alone could not link them
    stats = resolve_full(engine, S)
    assert stats.merges >= 2
    assert {_cluster(engine, x) for x in rows} == {min(rows)}
    with engine.connect() as conn:
        methods = {
            m
            for (m,) in conn.execute(
                select(ids.IdentityMatch.method).where(ids.IdentityMatch.entity == "person")
            )
        }
    assert methods == {"score"}  # learned weights decide; no hand-written rule


def test_provider_alias_addresses_merge_by_rule(engine: Engine) -> None:
    a = _put(engine, MAIL, _person("1", full_name="Hanako", emails=["hana.ko@gmail.com"]))
    b = _put(engine, CRM, _person("2", full_name="佐藤花子", emails=["hanako+crm@gmail.com"]))
    resolve_full(engine, S)
    assert _cluster(engine, b[0]) == a[0]
    with engine.connect() as conn:
        m = conn.execute(select(ids.IdentityMatch.method, ids.IdentityMatch.decision)).one()
    assert tuple(m) == ("score", "merge")


def test_rerun_from_scratch_and_additions_keep_ids(engine: Engine) -> None:
    rows = _tanaka(engine)
    resolve_full(engine, S)
    before = _members(engine)
    resolve_full(engine, S)
    assert _members(engine) == before
    # A new record joins the existing customer; its id does not change.
    new = _put(
        engine,
        StreamKey("hubspot", "contacts"),
        _person("h1", full_name="たなか たろう", phones=["09012345678"]),
    )
    stats = resolve_incremental(engine, S)
    assert stats.mode == "incremental" and stats.records == 1
    assert _cluster(engine, new[0]) == min(rows)
    after = _members(engine)
    assert all(after[k] == v for k, v in before.items())
    # From scratch gives exactly the incremental result.
    resolve_full(engine, S)
    assert _members(engine) == after


def test_merged_cluster_id_stays_an_alias_that_resolves(engine: Engine) -> None:
    a = _put(engine, MAIL, _person("1", full_name="山田 花子", emails=["hanako@gmail.com"]))
    b = _put(engine, MAIL, _person("2", full_name="ヤマダ ハナコ", phones=["03-5555-1111"]))
    c = _put(engine, CRM, _person("3", full_name="Yamada Hanako", phones=["0355551111"]))
    resolve_full(engine, S)
    assert _cluster(engine, c[0]) == b[0] != a[0]  # two customers so far
    # A record with the address of one and the phone of the other joins them.
    _put(
        engine,
        CARDS,
        _person("4", full_name="山田花子", emails=["hanako@gmail.com"], phones=["+81-3-5555-1111"]),
    )
    resolve_incremental(engine, S)
    assert _cluster(engine, b[0]) == _cluster(engine, c[0]) == a[0]
    with engine.connect() as conn:
        alias = conn.execute(select(ids.IdentityAlias.alias_id, ids.IdentityAlias.cluster_id)).all()
        assert [tuple(x) for x in alias] == [(b[0], a[0])]
        assert adm.find_customer(conn, str(b[0])) == a[0]


def test_split_and_never_link_survive_reruns(engine: Engine) -> None:
    rows = _tanaka(engine)
    resolve_full(engine, S)
    keep, moved = min(rows), max(rows)
    with engine.begin() as conn:
        new_id = adm.split(conn, keep, [moved], note="different person")
    assert new_id == moved
    assert _cluster(engine, moved) == moved and _cluster(engine, keep) == keep
    for run in (resolve_full, resolve_incremental, resolve_full):
        run(engine, S)
        assert _cluster(engine, moved) == moved
        assert _cluster(engine, keep) == keep
    mid = sorted(rows)[1]
    with engine.begin() as conn:
        adm.never_link(conn, keep, mid)
    resolve_full(engine, S)
    assert _cluster(engine, keep) != _cluster(engine, mid)
    # Touching every row (a new sync of them) does not undo the pins either.
    with engine.begin() as conn:
        conn.execute(update(t.Person).values(updated_at=now()))
    resolve_incremental(engine, S)
    assert len({_cluster(engine, x) for x in rows}) == 3


def test_review_queue_accept_and_reject(engine: Engine) -> None:
    a = _put(engine, MAIL, _person("1", full_name="中村 健太", emails=["kenta.n@gmail.com"]))
    b = _put(
        engine, CARDS, _person("2", full_name="ナカムラ ケンタ", emails=["nk.kenta@yahoo.co.jp"])
    )
    c = _put(
        engine, CRM, _person("3", full_name="Nakamura Kenta", emails=["kenta1990@outlook.com"])
    )
    # Names agree and nothing else is known: with a strict merge threshold that is a review.
    strict = MatchSettings(merge_threshold=0.999, review_threshold=0.1)
    stats = resolve_full(engine, strict)
    assert stats.merges == 0 and stats.reviews == 3
    with engine.connect() as conn:
        queue = adm.review_queue(conn)
    pair = {(q["a_id"], q["b_id"]): q["id"] for q in queue}
    with engine.begin() as conn:
        assert adm.accept(conn, pair[(a[0], b[0])], "tester") == a[0]
        adm.reject(conn, pair[(a[0], c[0])], "tester")
        adm.reject(conn, pair[(b[0], c[0])], "tester")
    for _ in range(2):
        resolve_full(engine, strict)
        assert _cluster(engine, b[0]) == a[0]
        assert _cluster(engine, c[0]) == c[0]
        with engine.connect() as conn:
            assert adm.review_queue(conn) == []


def test_survivorship_uses_source_priority_and_names_the_source(engine: Engine) -> None:
    from warehouse.identity.survivorship import SurvivorshipRules

    rows = _tanaka(engine)
    resolve_full(engine, S)
    prefer_cards = SurvivorshipRules(source_priority={"title": ["cards", "salesforce"]})
    prefer_crm = SurvivorshipRules(source_priority={"*": ["salesforce"]})
    with engine.connect() as conn:
        v1 = adm.customer_360(conn, min(rows), prefer_cards)
        v2 = adm.customer_360(conn, min(rows), prefer_crm)
    assert v1.golden["title"]["value"] == "部長"
    assert v1.golden["title"]["source"] == "cards/people"
    assert v1.golden["title"]["rule"] == "source_priority"
    assert v2.golden["title"]["value"] == "営業部長"
    assert v2.golden["family_name_kana"]["source"] == "salesforce/contacts"
    assert v1.golden["primary_email"]["value"] == "t.tanaka@abc.co.jp"  # the only one known
    assert {e for e, _ in v1.emails} == {"t.tanaka@abc.co.jp"}
    assert {p for p, _ in v1.phones} == {"+819012345678"}
    assert len(v1.sources) == 3 and len(v1.merges) >= 2


def test_golden_record_is_stored_for_merged_clusters(engine: Engine) -> None:
    from warehouse.identity import survivorship

    rows = _tanaka(engine)
    rules = survivorship.SurvivorshipRules(source_priority={"*": ["cards"]})
    resolve_full(engine, S, lambda conn, ch: survivorship.refresh(conn, ch, rules))
    with engine.connect() as conn:
        g = conn.execute(
            select(ids.IdentityCluster.golden, ids.IdentityCluster.size).where(
                ids.IdentityCluster.id == min(rows), ids.IdentityCluster.entity == "person"
            )
        ).one()
    assert g.size == 3
    assert g.golden["title"] == {
        "value": "部長",
        "source": "cards/people",
        "record_id": rows[1],
        "rule": "source_priority",
    }


def test_incremental_touches_only_the_blocks_around_changes(engine: Engine) -> None:
    def word(i: int) -> str:
        return "".join(chr(97 + (i // 26**k) % 26) for k in range(3))

    people = [
        _person(
            str(i),
            full_name=f"{word(i % 50)}ko {word(i % 50)}yama",  # namesakes: real blocks
            emails=[f"p{i}@corp{i % 20}.co.jp"],
            phones=[f"03-1000-{i:04d}"],
            organization=r.OrgRef(name=f"Corp{i % 20} 株式会社"),
        )
        for i in range(300)
    ]
    _put(engine, CRM, *people)
    full = resolve_full(engine, S)
    assert full.records == 300
    # One changed row and one new duplicate of another row.
    _put(engine, CRM, _person("5", full_name=f"{word(5)}ko {word(5)}yama Jr", emails=["x@y.jp"]))
    dup = _put(
        engine, CARDS, _person("x", full_name=f"{word(7)}ko {word(7)}yama", phones=["0310000007"])
    )
    inc = resolve_incremental(engine, S)
    assert inc.records == 2
    assert inc.pairs < full.pairs / 10
    assert inc.pairs >= 1
    assert _cluster(engine, dup[0]) != dup[0]
    with engine.connect() as conn:
        state = conn.execute(
            select(ids.IdentityState.stats).where(ids.IdentityState.entity == "person")
        ).scalar_one()
    assert state["mode"] == "incremental"


def test_deleted_rows_leave_their_cluster(engine: Engine) -> None:
    rows = _tanaka(engine)
    resolve_full(engine, S)
    x = ids.IdentityMatch
    touching = select(x.decision).where(
        x.entity == "person", (x.a_id == max(rows)) | (x.b_id == max(rows))
    )
    with engine.begin() as conn:
        assert "merge" in conn.execute(touching).scalars().all()
        conn.execute(
            update(t.Person)
            .where(t.Person.id == max(rows))
            .values(deleted_at=now(), updated_at=now())
        )
    resolve_incremental(engine, S)
    with engine.connect() as conn:
        assert max(rows) not in graph.members_of(conn, "person", [min(rows)])
        assert conn.execute(touching).scalars().all() == []  # its machine evidence is gone


def test_a_job_changer_is_one_customer_and_keeps_both_employments(engine: Engine) -> None:
    # 勅使河原 宏 moved from 旧社 to 新社: one mobile across both CRM rows. They are one
    # customer, and each row still names its own company (the history).
    kana = {
        "family_name": "勅使河原",
        "given_name": "宏",
        "family_name_kana": "テシガハラ",
        "given_name_kana": "ヒロシ",
    }
    old, new = _put(
        engine,
        CRM,
        _person(
            "old",
            **kana,
            emails=["h.teshigahara@old.co.jp"],
            phones=["090-1234-5678"],
            organization=r.OrgRef(name="旧社株式会社", corporate_number="7000012050002"),
        ),
        _person(
            "new",
            **kana,
            emails=["teshigahara@new.co.jp"],
            phones=["09012345678"],
            organization=r.OrgRef(name="株式会社新社", corporate_number="1010001000006"),
        ),
    )
    resolve_full(engine, S)
    assert _cluster(engine, old) == _cluster(engine, new)
    with engine.connect() as conn:
        orgs = dict(
            conn.execute(
                select(t.Person.id, t.Person.organization_id).where(t.Person.id.in_([old, new]))
            ).all()
        )
        names = set(
            conn.execute(
                select(t.Organization.name).where(t.Organization.id.in_(orgs.values()))
            ).scalars()
        )
        view = adm.customer_360(conn, _cluster(engine, old))
    assert len(set(orgs.values())) == 2 and len(names) == 2, names
    assert set(view.members) == {old, new}


def test_a_full_run_clusters_its_own_decisions_as_the_stored_evidence_does(
    engine: Engine,
) -> None:
    # A full run hands its decisions to clustering instead of reading them back: the pairs
    # people decided must still count (a rejected merge is no edge, an accepted pair the run
    # never found is one, unless one of its rows is gone), as the stored evidence says.
    rows = _tanaka(engine)
    other = _put(engine, MAIL, _person("o1", full_name="鈴木 一郎", emails=["ichiro@xyz.jp"]))
    gone = _put(engine, MAIL, _person("o2", full_name="佐藤 花子", emails=["hanako@xyz.jp"]))
    resolve_full(engine, S)
    first, last = min(rows), max(rows)
    m = ids.IdentityMatch
    with engine.begin() as conn:
        conn.execute(
            update(m)
            .where(m.entity == "person", (m.a_id == last) | (m.b_id == last))
            .values(decision="rejected", decided_by="tester")
        )
        for b in (other[0], gone[0]):
            conn.execute(
                ids.IdentityMatch.__table__.insert().values(
                    entity="person",
                    a_id=first,
                    b_id=b,
                    method="manual",
                    score=1.0,
                    fields={},
                    decision="accepted",
                    decided_by="tester",
                    created_at=now(),
                    updated_at=now(),
                )
            )
        conn.execute(update(t.Person).where(t.Person.id == gone[0]).values(deleted_at=now()))
    resolve_full(engine, S)
    assert {_cluster(engine, x) for x in (*rows[:2], other[0])} == {first}
    assert _cluster(engine, last) == last and _cluster(engine, gone[0]) == gone[0]
    with engine.begin() as conn:
        before = _members(engine)
        assert rs.cluster_all(conn, now()) == set()  # the stored evidence: nothing to change
    assert _members(engine) == before


def test_a_from_scratch_membership_write_reads_back_as_given(engine: Engine) -> None:
    # Thousands of rows into an entity with none yet (on PostgreSQL by COPY), then a rewrite
    # over them (the upsert): rows, sizes and timestamps as given.
    new = {r: r - r % 3 for r in range(3, 3003)}
    ts = now()
    c = ids.IdentityCluster
    with engine.begin() as conn:
        assert graph.write_membership(conn, "person", {}, new, (), ts) == set(new.values())
        moved = {**new, 4: 6}
        graph.write_membership(conn, "person", new, moved, (), ts)
        sizes = dict(conn.execute(select(c.id, c.size).where(c.entity == "person")).all())
        stamps = set(conn.execute(select(c.created_at).where(c.entity == "person")).scalars())
    assert _members(engine) == moved
    assert sizes[3] == 2 and sizes[6] == 4 and len(sizes) == 1000 and stamps == {ts}
