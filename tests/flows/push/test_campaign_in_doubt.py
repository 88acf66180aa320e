"""Sends in doubt, stated honestly: SMTP retries only before DATA; after DATA a broken link
leaves the recipient confirmed (the channel could look) or held for a person, never resent;
a message that cannot be built skips its recipient and never blocks the rest."""

from __future__ import annotations

import smtplib
from pathlib import Path

from sqlalchemy import Engine, select, update

from connectors.mail.smtp_send import SmtpChannel
from flows.push.campaign_run import approved_plan, open_batches, plan
from flows.push.campaign_send import send_batch
from flows.push.config import PushConfig
from tests.support.push.push_bulk import bulk_cfg, seed_recipients
from tests.support.push.push_smtp import Received, smtp_server
from warehouse import schema as t
from warehouse.activation import ledger
from warehouse.activation.ledger_schema import Delivery, PlanEntry
from warehouse.state import now


def _run(engine: Engine, cfg: PushConfig, channel: SmtpChannel) -> dict[str, int]:
    out: dict[str, int] = {}
    plan_id = approved_plan(engine, cfg, "bulk")
    for batch in open_batches(engine, plan_id, cfg.campaign("bulk").batch_size):
        for k, v in send_batch(engine, cfg, "bulk", plan_id, batch, channel).items():
            out[k] = out.get(k, 0) + v
    channel.close()
    return out


def _addr(engine: Engine, pid: int) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(t.Person.primary_email).where(t.Person.id == pid)).scalar())


def _smtp(port: int, box: Received | None = None) -> SmtpChannel:
    check = box.has if box is not None else None
    return SmtpChannel(
        lambda: smtplib.SMTP("127.0.0.1", port, timeout=10), name="main", sent_check=check
    )


def test_link_cut_after_data_stores_one_copy_and_holds_the_recipient(
    engine: Engine, tmp_path: Path
) -> None:
    groups = seed_recipients(engine, 40, seed=21)
    victim, other = sorted(groups["eligible"])[:2]
    with smtp_server() as (box, port):
        box.drop_after_data.add(_addr(engine, victim))
        box.drop_at_rcpt_once.add(_addr(engine, other))  # before DATA: retried, one copy
        cfg = bulk_cfg(tmp_path, {"type": "smtp", "host": "127.0.0.1", "port": port})
        plan(engine, cfg, "bulk")
        first = _run(engine, cfg, _smtp(port))  # plain SMTP: cannot look a message up
        assert first["in_doubt"] == 1 and first["sent"] == len(groups["eligible"]) - 1
        # A later plan and run does not resend the held one.
        plan(engine, cfg, "bulk")
        _run(engine, cfg, _smtp(port))
        received = box.ids()
        assert max(received.values()) == 1 and len(received) == len(groups["eligible"])
    with engine.connect() as conn:
        held = ledger.held(conn, "bulk")
    assert [h.person_id for h in held] == [victim]
    assert "after DATA" in str(held[0].detail)
    with engine.begin() as conn:
        key = ledger.Key("bulk", victim, 1)
        assert ledger.decide(conn, key, resend=False, at=now(), who="test")
        assert not ledger.decide(conn, key, resend=False, at=now(), who="test")  # not held now
    with engine.connect() as conn:
        assert not ledger.held(conn, "bulk")


def test_link_cut_after_data_is_confirmed_where_the_channel_can_look(
    engine: Engine, tmp_path: Path
) -> None:
    groups = seed_recipients(engine, 20, seed=22)
    victim = min(groups["eligible"])
    with smtp_server() as (box, port):
        box.drop_after_data.add(_addr(engine, victim))
        cfg = bulk_cfg(tmp_path, {"type": "smtp", "host": "127.0.0.1", "port": port})
        plan(engine, cfg, "bulk")
        out = _run(engine, cfg, _smtp(port, box))
        assert out.get("in_doubt", 0) == 0 and out["recovered"] == 1
        assert max(box.ids().values()) == 1
    with engine.connect() as conn:
        status = conn.execute(
            select(Delivery.status).where(Delivery.person_id == victim)
        ).scalar_one()
    assert status == "sent"


def test_a_person_can_release_a_held_recipient_for_resending(
    engine: Engine, tmp_path: Path
) -> None:
    groups = seed_recipients(engine, 10, seed=23)
    victim = min(groups["eligible"])
    with smtp_server() as (box, port):
        box.drop_after_data.add(_addr(engine, victim))
        cfg = bulk_cfg(tmp_path, {"type": "smtp", "host": "127.0.0.1", "port": port})
        plan(engine, cfg, "bulk")
        _run(engine, cfg, _smtp(port))
        box.drop_after_data.clear()
        with engine.begin() as conn:
            assert ledger.decide(
                conn, ledger.Key("bulk", victim, 1), resend=True, at=now(), who="t"
            )
        view = plan(engine, cfg, "bulk")
        assert [x.person_id for x in view.lines if x.action == "send"] == [victim]
        assert _run(engine, cfg, _smtp(port)) == {"sent": 1}
        assert box.ids().most_common(1)[0][1] == 2  # the person chose a second copy


def test_a_recipient_whose_message_cannot_be_built_is_skipped_and_the_rest_go_out(
    engine: Engine, tmp_path: Path
) -> None:
    groups = seed_recipients(engine, 60, seed=24)
    bad = sorted(groups["eligible"])[:3]
    with smtp_server() as (box, port):
        cfg = bulk_cfg(tmp_path, {"type": "smtp", "host": "127.0.0.1", "port": port}, batch_size=20)
        plan(engine, cfg, "bulk")
        with engine.begin() as conn:  # names turned hostile after the plan was approved
            conn.execute(
                update(t.Person)
                .where(t.Person.id.in_(bad))
                .values(full_name="Evil\r\nBcc: everyone@evil.example")
            )
        out = _run(engine, cfg, _smtp(port))
        assert out["skipped"] == 3 and out["sent"] == len(groups["eligible"]) - 3
        assert len(box.ids()) == len(groups["eligible"]) - 3
    with engine.connect() as conn:
        reasons = conn.execute(
            select(PlanEntry.outcome_reason).where(PlanEntry.person_id.in_(bad))
        ).scalars()
        assert all(r.startswith("cannot build the message") for r in reasons)
        left = conn.execute(select(Delivery.id).where(Delivery.status == "pending")).all()
    assert left == []
