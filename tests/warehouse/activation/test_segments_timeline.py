"""Bounces and auto-replies are kept but are no contact (issue 16): an activity off the
timeline never satisfies an activity condition, while a forward or invitation (mail a person
wrote, with its own kind) still does. On SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Engine, update

from tests.support.push.push_seed import AS_OF, Seeder, ago, seed_people
from warehouse import schema as t
from warehouse.activation.segments import Context, members, parse_segments


def _members(engine: Engine, cond: dict[str, object]) -> set[int]:
    parsed = parse_segments({"s": cond})
    with engine.connect() as conn:
        return set(members(conn, parsed["s"], Context(as_of=AS_OF, segments=parsed)))


def test_auto_replies_and_bounces_are_no_contact(engine: Engine) -> None:
    ids = seed_people(engine)
    keiko, mika = ids["keiko"], ids["mika"]
    cond = {"activity": "last_contact", "within_days": 3}
    inbound = {"activity": "last_inbound_mail", "within_days": 3}
    before = _members(engine, cond)
    assert keiko not in before and mika not in before
    with engine.begin() as conn:
        s = Seeder(conn)
        s._act = 1000
        ooo = s.activity("auto_reply", ago(1), direction="inbound", people=[(keiko, "from")])
        dsn = s.activity("bounce", ago(1), direction="inbound", people=[(keiko, "from")])
        # The flag itself decides, whatever the kind: mail taken off the timeline is no contact.
        hidden = s.activity("email", ago(1), direction="inbound", people=[(keiko, "from")])
        fwd = s.activity("forward", ago(1), direction="inbound", people=[(mika, "from")])
        conn.execute(
            update(t.Activity).where(t.Activity.id.in_([ooo, dsn, hidden])).values(timeline=False)
        )
        assert fwd
    assert keiko not in _members(engine, cond) and keiko not in _members(engine, inbound)
    assert mika in _members(engine, cond) and mika in _members(engine, inbound)
