"""Push works per customer: consent, suppression, caps and the ledger see every record of the
customer (records stay records; the resolver links them). Both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, insert, select

from warehouse import records as r
from warehouse import schema as t
from warehouse.activation import ledger
from warehouse.activation.consent import (
    ConsentEvent,
    SuppressionEvent,
    may_send,
    record_consent,
    suppress,
)
from warehouse.activation.ledger_schema import Delivery
from warehouse.identity import admin
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.resolve import resolve_full
from warehouse.state import StreamKey
from warehouse.write.store import apply_page

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _two_records(engine: Engine) -> tuple[int, int]:
    """One customer as two sources wrote it: the export's row and the CRM contact."""
    with engine.begin() as conn:
        apply_page(
            conn,
            StreamKey("export", "rows"),
            records=[r.Person(source_id="1", full_name="田中 太郎", emails=["t.tanaka@abc.co.jp"])],
        )
        apply_page(
            conn,
            StreamKey("crm", "contacts"),
            records=[
                r.Person(
                    source_id="c9",
                    full_name="田中 太郎",
                    emails=["t.tanaka@abc.co.jp", "taro.tanaka@gmail.com"],
                )
            ],
        )
        a, b = (int(i) for i in conn.execute(select(t.Person.id).order_by(t.Person.id)).scalars())
    resolve_full(engine, MatchSettings())
    return a, b


def _consent(engine: Engine, pid: int, status: str, at: datetime) -> None:
    with engine.begin() as conn:
        record_consent(
            conn,
            ConsentEvent(
                person_id=pid,
                purpose="marketing_mail",
                status=status,  # type: ignore[arg-type]
                source="form",
                at=at,
            ),
        )


def _may(engine: Engine, target: int | str) -> tuple[bool, str]:
    with engine.connect() as conn:
        d = may_send(conn, target, "marketing_mail", "smtp")
    return d.allowed, d.reason


def test_an_opt_out_on_one_record_of_a_customer_stops_every_address(engine: Engine) -> None:
    a, b = _two_records(engine)
    _consent(engine, a, "opted_in", T0)
    assert _may(engine, a)[0] and _may(engine, b)[0]  # the opt-in is the customer's
    _consent(engine, b, "opted_out", T0 + timedelta(days=1))
    for target in (a, b, "t.tanaka@abc.co.jp", "taro.tanaka@gmail.com"):
        allowed, reason = _may(engine, target)
        assert not allowed and "opted out" in reason, target


def test_an_unsubscribe_from_one_address_blocks_the_customers_others(engine: Engine) -> None:
    a, _b = _two_records(engine)
    _consent(engine, a, "opted_in", T0)
    with engine.begin() as conn:
        suppress(
            conn,
            SuppressionEvent(
                email="taro.tanaka@gmail.com", reason="unsubscribe", source="link", at=T0
            ),
        )
    allowed, reason = _may(engine, "t.tanaka@abc.co.jp")
    assert not allowed and "unsubscribe" in reason


def test_a_split_remaps_the_ledger_rows_to_the_record_that_was_mailed(engine: Engine) -> None:
    a, b = _two_records(engine)
    with engine.begin() as conn:
        conn.execute(
            insert(Delivery),
            [
                {
                    "campaign": "autumn",
                    "person_id": b,  # sent to the CRM record's address
                    "step": 1,
                    "channel": "smtp",
                    "address": "taro.tanaka@gmail.com",
                    "message_id": "<m1@kizuna>",
                    "status": "sent",
                    "created_at": T0,
                    "sent_at": T0,
                }
            ],
        )
    with engine.connect() as conn:
        assert ledger.deliveries(conn, "autumn") == {(a, 1): ("sent", T0)}  # the customer's
        assert ledger.sent_counts(conn, [a], T0 - timedelta(days=1)) == {a: 1}
    with engine.begin() as conn:
        admin.split(conn, a, [b], note="two people after all")
    with engine.connect() as conn:
        got = ledger.deliveries(conn, "autumn")
        assert list(got) == [(b, 1)]  # the step stays with the person who got the mail
        assert ledger.sent_counts(conn, [a], T0 - timedelta(days=1)) == {}
        assert ledger.sent_counts(conn, [b], T0 - timedelta(days=1)) == {b: 1}
