"""The privacy wing's pieces on both databases: one salt however many erasures start at once,
and the text search that finds an erased value exactly (LIKE wildcards and regex characters
in an address are literal), masking it without touching a near miss."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy import Engine, func, insert, select

from warehouse import schema as t
from warehouse.db import write_transaction
from warehouse.privacy import redact, salt
from warehouse.privacy.schema import PrivacySalt


def test_concurrent_first_erasures_agree_on_one_salt(engine: Engine) -> None:
    got: list[bytes] = []
    start = threading.Barrier(4)

    def one() -> None:
        start.wait()
        with write_transaction(engine) as conn:
            got.append(salt.ensure(conn))

    threads = [threading.Thread(target=one) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(got) == 4 and len(set(got)) == 1 and len(got[0]) == 32
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(PrivacySalt)).scalar_one() == 1
        assert salt.existing(conn) == got[0]
    # Keyed: the same address under another salt is another token.
    assert salt.address_token(got[0], "A_B%c@X.jp") == salt.address_token(got[0], "a_b%c@x.jp")
    assert salt.address_token(got[0], "a_b%c@x.jp") != salt.address_token(b"x" * 32, "a_b%c@x.jp")


def test_redaction_is_exact_for_wildcards_and_masks_json_too(engine: Engine) -> None:
    ts = datetime(2026, 12, 1, tzinfo=UTC)
    exact = "a_b%c.(d)+@x.jp"
    near = "aXbYc.(d)+@x.jp"  # what an unescaped LIKE or regex would also take
    with engine.begin() as conn:
        conn.execute(
            insert(t.Organization),
            [
                {
                    "name": f"宛先 {exact}",
                    "name_normalized": "a",
                    "attributes": {"note": exact},
                    "created_at": ts,
                    "updated_at": ts,
                },
                {
                    "name": f"宛先 {near}",
                    "name_normalized": "b",
                    "attributes": {"note": near},
                    "created_at": ts,
                    "updated_at": ts,
                },
                {
                    "name": "山田 花子様",
                    "name_normalized": "c",
                    "attributes": {"contact": "山田 花子"},
                    "created_at": ts,
                    "updated_at": ts,
                },
            ],
        )
        vals = redact.values([redact.Person("山田", "花子")], [exact.upper()], [])
        counts = redact.redact(conn, vals)
    assert counts == {"organization": 2}
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.Organization.name, t.Organization.attributes).order_by(t.Organization.id)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("宛先 [erased]", {"note": "[erased]"}),
        (f"宛先 {near}", {"note": near}),
        ("[erased]様", {"contact": "[erased]"}),
    ]
