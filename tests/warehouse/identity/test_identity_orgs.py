"""Organizations: spellings the write path leaves apart become one company; 法人番号 rules."""

from __future__ import annotations

from sqlalchemy import Engine, insert, select, update

from warehouse import records as r
from warehouse import schema as t
from warehouse.identity import admin as adm
from warehouse.identity import graph as graph
from warehouse.identity import schema as ids_
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.keys.normalize import email_domain
from warehouse.identity.org_resolve import _mail_domain, org_features
from warehouse.identity.resolve import resolve_full, resolve_incremental
from warehouse.state import StreamKey, now
from warehouse.write.store import apply_page


def _orgs(engine: Engine, *orgs: r.Organization) -> dict[str, int]:
    with engine.begin() as conn:
        apply_page(conn, StreamKey("crm", "accounts"), records=list(orgs), cursor=None)
        return {
            sid: int(eid)
            for sid, eid in conn.execute(
                select(t.SourceRecord.source_id, t.SourceRecord.entity_id).where(
                    t.SourceRecord.entity == "organization"
                )
            )
            if eid is not None
        }


def _org(sid: str, name: str, **kw: str) -> r.Organization:
    return r.Organization(source_id=sid, name=name, payload_hash=sid, **kw)


def test_company_spellings_resolve_and_corporate_numbers_win(engine: Engine) -> None:
    ids = _orgs(
        engine,
        _org("1", "合同会社サクラ商事"),
        _org("2", "さくら商事(同)"),  # hiragana and an abbreviated 法人格
        _org("3", "ミドリ物産株式会社", corporate_number="1234567890123", phone="03-1111-2222"),
        _org("4", "みどり物産", corporate_number="9999999999999"),  # another company
        _org("5", "みどり物産販売", phone="0311112222"),  # same phone, different name
    )
    assert len(set(ids.values())) == 5  # the write path could not join them
    stats = resolve_full(engine, MatchSettings())
    assert stats.organizations["merges"] >= 1
    with engine.connect() as conn:
        assert graph.resolve_id(conn, "organization", ids["2"]) == ids["1"]
        assert graph.resolve_id(conn, "organization", ids["4"]) == ids["4"]
        assert graph.resolve_id(conn, "organization", ids["3"]) == ids["3"]
        assert graph.resolve_id(conn, "organization", ids["5"]) == ids["5"]
    # Rerun: same clusters; a never-link between companies holds.
    resolve_full(engine, MatchSettings())
    with engine.begin() as conn:
        graph.add_pins(conn, "organization", [(ids["1"], ids["2"])], "never-link", None)
    resolve_full(engine, MatchSettings())
    with engine.connect() as conn:
        assert graph.resolve_id(conn, "organization", ids["2"]) == ids["2"]


def test_customer_view_shows_the_resolved_company(engine: Engine) -> None:
    with engine.begin() as conn:
        apply_page(
            conn,
            StreamKey("mail", "contacts"),
            records=[
                r.Person(
                    source_id="p",
                    full_name="佐藤 一郎",
                    emails=["ichiro@gmail.com"],
                    organization=r.OrgRef(name="さくら商事(同)"),
                    payload_hash="p",
                )
            ],
            cursor=None,
        )
    ids = _orgs(engine, _org("1", "合同会社サクラ商事", corporate_number="1111111111111"))
    stats = resolve_incremental(engine, MatchSettings())  # first run is a full one
    assert stats.mode == "full"
    with engine.connect() as conn:
        view = adm.customer_360(conn, adm.find_customer(conn, "ichiro@gmail.com"))
    assert view.organization is not None
    assert view.organization["corporate_number"] == "1111111111111"
    assert view.organization["id"] == min(ids["1"], view.organization["id"])
    assert view.organization["also_known_as"]


def _row(sid: str, company: str, *emails: str) -> list[r.Organization | r.Person]:
    """One sheet row naming a company and a contact: the person belongs to that row's company."""
    person = r.Person(
        source_id=sid,
        full_name=f"佐藤 {sid}",
        emails=list(emails),
        organization=r.OrgRef(name=company),
        payload_hash=sid,
    )
    return [_org(sid, company), person]


def test_a_company_without_a_domain_borrows_the_one_its_contacts_use_most(engine: Engine) -> None:
    rows = [
        *_row("1", "エービーシー商事", "ichiro@abc.co.jp", "Jiro@ABC.co.jp", "saburo@xyz.co.jp"),
        *_row("2", "タイ商会", "shiro@gmail.com", "goro@zzz.co.jp", "rokuro@yyy.co.jp"),  # a tie
        *_row("3", "フリー商会", "nana@gmail.com"),  # free mail says nothing
    ]
    with engine.begin() as conn:
        apply_page(conn, StreamKey("sheet", "rows"), records=rows, cursor=None)
    want = {"エービーシー商事": "abc.co.jp", "タイ商会": "yyy.co.jp", "フリー商会": ""}
    with engine.connect() as conn:
        o = t.Organization
        names = {int(i): n for i, n, d in conn.execute(select(o.id, o.name, o.domain)) if not d}
        full = {names[f.id]: f.domain for f in org_features(conn)}
        some = {names[f.id]: f.domain for f in org_features(conn, "JP", list(names))}
    assert full == some == want


def test_plain_addresses_take_a_short_way_to_the_same_company_domain() -> None:
    for address in [
        "t.tanaka@abc.co.jp",
        "a+tag@b-c.jp",
        ".x@b.jp",
        "a@-b.jp",
        "x@gmail.com",
        "T.Tanaka@ABC.co.jp",
        '"a b"@x.jp',
        '"ab"@x.jp',
        "'a@b.jp'",
        "<a@b.jp>",
        " a@b.jp",
        "a@b.jp\n",
        "mailto:a@b.jp",
        "a@b.",
        "a@b..jp",
        "a@.b.jp",
        "a@b",
        "a@@b.jp",
        "@b.jp",
        "a@例え.jp",
        "ａ@ｂ.jp",
    ]:
        assert _mail_domain(address) == email_domain(address), address


def test_a_full_run_clusters_companies_as_the_stored_evidence_says(engine: Engine) -> None:
    # The full run clusters from the decisions it holds: a pair people rejected is no edge,
    # a pair they accepted is one though the run never found it, unless a row is gone.
    ids = _orgs(
        engine,
        _org("1", "合同会社サクラ商事"),
        _org("2", "さくら商事(同)"),
        _org("3", "サクラ商事"),
        _org("4", "ミドリ物産"),
        _org("5", "アオバ建設"),
    )
    resolve_full(engine, MatchSettings())
    m = ids_.IdentityMatch
    first, last, other, gone = ids["1"], ids["3"], ids["4"], ids["5"]
    with engine.connect() as conn:
        assert graph.resolve_id(conn, "organization", last) == first
    with engine.begin() as conn:
        conn.execute(
            update(m)
            .where(m.entity == "organization", (m.a_id == last) | (m.b_id == last))
            .values(decision="rejected", decided_by="tester")
        )
        for b in (other, gone):
            conn.execute(
                insert(m).values(
                    entity="organization",
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
        conn.execute(
            update(t.Organization).where(t.Organization.id == gone).values(deleted_at=now())
        )
    resolve_full(engine, MatchSettings())
    with engine.connect() as conn:
        got = {k: graph.resolve_id(conn, "organization", v) for k, v in ids.items()}
    assert got == {"1": first, "2": first, "3": last, "4": first, "5": gone}
