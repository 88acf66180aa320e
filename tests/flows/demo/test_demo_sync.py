"""The generated demo workspace synced end to end through every source (SQLite and
PostgreSQL): the counts add up, bad input is quarantined, and a second sync writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from flows import config
from flows.demo.generate import generate_with_counts
from flows.engine import StreamResult, run_stream
from flows.sources import registry
from warehouse import schema as t
from warehouse.identity import schema as ids
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.resolve import resolve_full


def _sync_all(engine: Engine, ws_file: Path, run: str) -> dict[str, StreamResult]:
    ws = config.load(ws_file)
    out: dict[str, StreamResult] = {}
    for name in ws.sources:
        for spec in registry.streams(ws, name):
            out[name] = run_stream(engine, spec, f"{run}-{name}")
    return out


def _count(engine: Engine, stmt: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar_one())  # type: ignore[call-overload]


@pytest.mark.slow
def test_demo_workspace_syncs_and_resyncs_to_nothing(engine: Engine, tmp_path: Path) -> None:
    ws_file, made = generate_with_counts(tmp_path / "demo", messages=300, seed=7)
    first = _sync_all(engine, ws_file, "first")
    assert set(first) == {"customers", "deals", "mail", "calendar", "deal_lines"}

    q = {name: res.stats.quarantined for name, res in first.items()}
    assert q == {
        "customers": made.customers_bad,
        "deals": 0,
        "mail": made.messages_bad,
        "calendar": 0,
        "deal_lines": 0,
    }
    assert first["calendar"].read == made.events

    a = t.Activity
    emails = _count(engine, select(func.count()).select_from(a).where(a.kind == "email"))
    meetings = _count(engine, select(func.count()).select_from(a).where(a.kind == "meeting"))
    cancelled = _count(
        engine,
        select(func.count()).select_from(a).where(a.kind == "meeting", a.status == "cancelled"),
    )
    assert emails == made.messages - made.messages_bad
    # Every single event plus the expanded weekly and monthly series.
    assert meetings > made.events + 20
    assert cancelled == 1
    assert _count(engine, select(func.count()).select_from(t.Deal)) == made.deals
    assert _count(engine, select(func.count()).select_from(t.StaffUser)) == made.staff
    # Every row naming a company is a company record; the resolver makes them companies.
    resolve_full(engine, MatchSettings())
    o, m = t.Organization, ids.IdentityMember
    orgs = _count(
        engine,
        select(func.count(func.distinct(func.coalesce(m.cluster_id, o.id))))
        .select_from(o)
        .outerjoin(m, (m.record_id == o.id) & (m.entity == "organization"))
        .where(o.deleted_at.is_(None)),
    )
    assert made.companies <= orgs <= made.companies + 60  # + first contacts' companies from mail
    p = t.Person
    people = _count(
        engine,
        select(func.count(func.distinct(func.coalesce(m.cluster_id, p.id))))
        .select_from(p)
        .outerjoin(m, (m.record_id == p.id) & (m.entity == "person"))
        .where(p.deleted_at.is_(None)),
    )
    # Customers after resolution: the demo repeats people across rows and sources on purpose.
    assert made.customers_rows // 2 <= people <= made.customers_rows + 80

    # The same person under two addresses (company and private) is one person.
    pe = t.PersonEmail
    two = (
        select(m.cluster_id)
        .select_from(pe)
        .join(m, (m.record_id == pe.person_id) & (m.entity == "person"))
        .group_by(m.cluster_id)
        .having(func.count(func.distinct(pe.email)) > 1)
        .subquery()
    )
    assert _count(engine, select(func.count()).select_from(two)) > 10
    # Meetings and mail point at the same people: participants are linked, not duplicated.
    ap = t.ActivityParticipant
    unlinked = _count(
        engine,
        select(func.count())
        .select_from(ap)
        .where(ap.person_id.is_(None), ap.staff_user_id.is_(None)),
    )
    assert unlinked == 0

    second = _sync_all(engine, ws_file, "second")
    for name, res in second.items():
        s = res.stats
        assert (s.inserted, s.updated, s.deleted, s.quarantined) == (0, 0, 0, 0), name
