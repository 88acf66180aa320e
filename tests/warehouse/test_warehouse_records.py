"""Records stay records: the write path never merges two source records (both databases)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from warehouse import records as r
from warehouse import schema as t
from warehouse.identity.crosswalk import record_key
from warehouse.identity.graph import membership
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.resolve import resolve_full
from warehouse.state import StreamKey
from warehouse.write.store import apply_page

KEY = StreamKey("export", "contacts")


def test_a_team_mailbox_shared_by_two_people_is_two_records(engine: Engine) -> None:
    rows = [
        r.Person(
            source_id="1", full_name="田中 太郎", emails=["eigyo@abc.co.jp"], payload_hash="a"
        ),
        r.Person(
            source_id="2", full_name="鈴木 花子", emails=["eigyo@abc.co.jp"], payload_hash="b"
        ),
    ]
    with engine.begin() as conn:
        apply_page(conn, KEY, records=rows)
    with engine.connect() as conn:
        got = conn.execute(select(t.Person.full_name, t.Person.record_key).order_by(t.Person.id))
        names = [tuple(x) for x in got]
    # Each keeps its own name (no last-written-wins) and its rebuild-stable key.
    assert names == [
        ("田中 太郎", record_key("person", "export", "contacts", "1")),
        ("鈴木 花子", record_key("person", "export", "contacts", "2")),
    ]


def test_a_corporate_number_conflict_never_fails_a_stream(engine: Engine) -> None:
    """The issue's IntegrityError: one 法人番号 under two spellings, in two pages and streams."""
    a = r.Organization(source_id="o1", name="株式会社ABC", corporate_number="1234567890123")
    b = r.Organization(
        source_id="o2",
        name="エービーシー株式会社",
        corporate_number="1234567890123",
        domain="abc.co.jp",
    )
    c = r.Person(
        source_id="p1",
        full_name="佐藤 健",
        emails=["sato@abc.co.jp"],
        organization=r.OrgRef(name="ABC", corporate_number="1234567890123", domain="abc.co.jp"),
    )
    with engine.begin() as conn:
        apply_page(conn, KEY, records=[a], cursor={"n": 1})
    with engine.begin() as conn:
        apply_page(conn, KEY, records=[b], cursor={"n": 2})
    with engine.begin() as conn:
        apply_page(conn, StreamKey("crm", "contacts"), records=[c], cursor={"n": 1})
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(t.Organization)).scalar_one()
    assert n == 3  # two records and the CRM contact's reference: evidence, not a conflict
    resolve_full(engine, MatchSettings())
    with engine.connect() as conn:
        ids = [int(i) for (i,) in conn.execute(select(t.Organization.id))]
        assert len(set(membership(conn, "organization", ids).values())) == 1
