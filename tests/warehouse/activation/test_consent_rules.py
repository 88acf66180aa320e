"""``may_send``: opt-in for marketing, opt-out for follow-up, suppression over everything,
evidence appended and never rewritten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select, update

from tests.support.push.push_seed import seed_people
from warehouse import schema as t
from warehouse.activation.consent import (
    ConsentEvent,
    SuppressionEvent,
    history,
    lift_suppression,
    may_send,
    may_send_many,
    record_consent,
    suppress,
)

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _consent(
    engine: Engine,
    pid: int,
    status: str,
    at: datetime,
    purpose: str = "marketing_mail",
    evidence: str | None = None,
) -> bool:
    with engine.begin() as conn:
        return record_consent(
            conn,
            ConsentEvent(
                person_id=pid,
                purpose=purpose,  # type: ignore[arg-type]
                status=status,  # type: ignore[arg-type]
                source="seminar sign-up form",
                evidence=evidence,
                at=at,
            ),
        )


def _suppress(engine: Engine, email: str, reason: str) -> None:
    with engine.begin() as conn:
        suppress(conn, SuppressionEvent(email=email, reason=reason, source="test", at=T0))  # type: ignore[arg-type]


def _may(
    engine: Engine, target: int | str, purpose: str = "marketing_mail", channel: str = "smtp"
) -> tuple[bool, str]:
    with engine.connect() as conn:
        d = may_send(conn, target, purpose, channel)  # type: ignore[arg-type]
    return d.allowed, d.reason


def test_marketing_needs_opt_in_and_the_newest_record_wins(engine: Engine) -> None:
    ids = seed_people(engine)
    h = ids["hanako"]
    allowed, why = _may(engine, h)
    assert not allowed and "特定電子メール法" in why
    assert _may(engine, h, "sales_followup")[0]  # existing relationship: allowed unless refused
    _consent(engine, h, "opted_in", T0)
    assert _may(engine, h) == (True, "opted in (seminar sign-up form, 2026-11-01)")
    _consent(engine, h, "opted_out", T0 + timedelta(days=3))
    allowed, why = _may(engine, h)
    assert not allowed and why.startswith("opted out of marketing_mail")
    assert _may(engine, h, "sales_followup")[0]  # purposes are separate
    _consent(engine, h, "opted_in", T0 + timedelta(days=9))
    assert _may(engine, h)[0]
    with engine.connect() as conn:
        trail = history(conn, h)
    assert [s for _, s, _, _ in trail] == ["opted_in", "opted_out", "opted_in"]  # evidence kept


def test_replayed_evidence_is_recorded_once(engine: Engine) -> None:
    ids = seed_people(engine)
    assert _consent(engine, ids["taro"], "opted_out", T0, evidence="mail <a@b>")
    assert not _consent(engine, ids["taro"], "opted_out", T0, evidence="mail <a@b>")
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(t.Consent)).scalar_one()
    assert n == 1


def test_suppression_wins_over_consent_on_every_purpose_and_channel(engine: Engine) -> None:
    ids = seed_people(engine)
    h = ids["hanako"]
    _consent(engine, h, "opted_in", T0)
    _consent(engine, h, "opted_in", T0, purpose="sales_followup")
    _suppress(engine, "HANAKO@acme.example", "complaint")
    for purpose in ("marketing_mail", "sales_followup"):
        for channel in ("smtp", "outbox", "gmail", "salesforce"):
            allowed, why = _may(engine, h, purpose, channel)
            assert not allowed and why.startswith("suppressed: complaint"), (purpose, channel)
    assert not _may(engine, "hanako@acme.example")[0]  # by address, too
    with engine.begin() as conn:
        lift_suppression(conn, "hanako@acme.example", "admin: complaint was a mistake")
    assert _may(engine, h)[0]


def test_a_bounce_blocks_that_address_only(engine: Engine) -> None:
    ids = seed_people(engine)
    h = ids["hanako"]
    _consent(engine, h, "opted_in", T0)
    with engine.begin() as conn:
        conn.execute(
            t.table(t.PersonEmail).insert(), {"email": "hanako@home.example", "person_id": h}
        )
    _suppress(engine, "hanako@home.example", "bounce")
    assert _may(engine, h)[0]  # primary address still fine
    assert not _may(engine, "hanako@home.example")[0]
    _suppress(engine, "hanako@acme.example", "bounce")
    assert _may(engine, h) == (False, "suppressed: bounce (hanako@acme.example)")


@pytest.mark.parametrize(
    ("who", "reason"),
    [("ghost", "person deleted"), ("keiko_noemail", "no email address")],
)
def test_people_who_cannot_be_mailed(engine: Engine, who: str, reason: str) -> None:
    ids = seed_people(engine)
    pid = ids.get(who, ids["keiko"])
    if who == "keiko_noemail":
        with engine.begin() as conn:
            conn.execute(update(t.Person).where(t.Person.id == pid).values(primary_email=None))
            conn.execute(t.table(t.PersonEmail).delete().where(t.PersonEmail.person_id == pid))
    _consent(engine, pid, "opted_in", T0)
    assert _may(engine, pid) == (False, reason)
    assert _may(engine, pid, channel="salesforce")[0] == (who != "ghost")  # CRM needs no address


def test_addresses_without_a_person_and_staff_notices(engine: Engine) -> None:
    seed_people(engine)
    assert not _may(engine, "stranger@nowhere.example")[0]  # no consent can exist
    assert _may(engine, "alice@own.example", "staff_notice")[0]
    _suppress(engine, "alice@own.example", "bounce")
    assert not _may(engine, "alice@own.example", "staff_notice")[0]
    assert not _may(engine, "not an address")[0]


def test_batch_form_agrees_with_the_single_form(engine: Engine) -> None:
    ids = seed_people(engine)
    _consent(engine, ids["hanako"], "opted_in", T0)
    _consent(engine, ids["taro"], "opted_in", T0)
    _suppress(engine, "taro@kansai.example", "unsubscribe")
    pids = [v for k, v in ids.items() if k in ("hanako", "taro", "mika", "keiko", "ghost")]
    with engine.connect() as conn:
        many = may_send_many(conn, pids, "marketing_mail", "smtp")
        single = {p: may_send(conn, p, "marketing_mail", "smtp") for p in pids}
    assert many == single
    assert [p for p, d in many.items() if d.allowed] == [ids["hanako"]]
