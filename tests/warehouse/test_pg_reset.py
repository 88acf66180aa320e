"""The PostgreSQL ``engine`` fixture's reset (tests/support/pg_schema.empty_tables) leaves
what ``TRUNCATE … RESTART IDENTITY CASCADE`` of every table leaves: every table empty and
every identity starting over, whatever rows, references and ids the last test left."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, text

from tests.conftest import pg_url_or_skip
from tests.support.pg_schema import delete_order, empty_tables, engine_in, fresh_schemas
from warehouse.db import upgrade
from warehouse.schema import Organization, StaffUser, Team


@pytest.mark.postgres
def test_a_reset_schema_is_empty_and_its_ids_start_over() -> None:
    url = pg_url_or_skip()
    with fresh_schemas(url, 1) as (schema,):
        engine = engine_in(url, schema)
        try:
            upgrade(engine)
            with engine.connect() as conn:
                order = delete_order(conn, schema)
                refs = conn.execute(
                    text(
                        "select c.relname, p.relname from pg_constraint k "
                        "join pg_class c on c.oid = k.conrelid "
                        "join pg_class p on p.oid = k.confrelid "
                        "join pg_namespace n on n.oid = k.connamespace "
                        "where k.contype = 'f' and n.nspname = :s"
                    ),
                    {"s": schema},
                ).all()
            assert len(order) > 40 and "alembic_version" not in order
            assert refs and all(order.index(c) < order.index(p) for c, p in refs), refs

            def fill() -> tuple[int, int, int]:
                with engine.begin() as conn:
                    team = conn.execute(insert(Team).values(name="営業一課")).inserted_primary_key
                    user = conn.execute(
                        insert(StaffUser).values(email="sato@own.example", team_id=team[0])
                    ).inserted_primary_key
                    org = conn.execute(
                        insert(Organization).values(
                            name="株式会社サンプル",
                            name_normalized="サンプル",
                            owner_id=user[0],
                            created_at=datetime(2026, 12, 4, tzinfo=UTC),
                            updated_at=datetime(2026, 12, 4, tzinfo=UTC),
                        )
                    ).inserted_primary_key
                return team[0], user[0], org[0]

            assert fill() == (1, 1, 1)
            with engine.begin() as conn:  # ids used and given back: sequences moved on
                conn.execute(insert(Team).values(name="二課"))
                conn.execute(text("delete from team where name = '二課'"))
            with engine.begin() as conn:
                empty_tables(conn, schema, order)
            with engine.connect() as conn:
                counts = {
                    t: conn.execute(text(f'select count(*) from "{schema}"."{t}"')).scalar()
                    for t in order
                }
            assert set(counts.values()) == {0}, {t: n for t, n in counts.items() if n}
            assert fill() == (1, 1, 1)  # as after RESTART IDENTITY
            with engine.connect() as conn:
                assert conn.execute(select(Organization.owner_id)).scalar_one() == 1
        finally:
            engine.dispose()
