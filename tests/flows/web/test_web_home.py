"""My day: the signed-in rep's meetings today, open reminders and stale deals, nobody else's."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from starlette.testclient import TestClient

from flows.web.app import from_workspace
from tests.flows.cli.support import workspace
from tests.flows.web.conftest import World, csrf_of, sign_in
from warehouse import schema as t
from warehouse.activation.ledger_schema import Reminder


def test_my_day_shows_my_meetings_reminders_and_stale_deals(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    zone = ZoneInfo("Asia/Tokyo")
    nine = datetime.now(zone).replace(hour=9, minute=0, second=0, microsecond=0)
    old = datetime.now(zone) - timedelta(days=40)
    with world.engine.begin() as conn:
        a = t.table(t.Activity)
        for who in ("a1", "b1"):
            aid = conn.execute(
                a.insert()
                .values(
                    key=f"meet-{who}",
                    kind="meeting",
                    occurred_at=nine,
                    ends_at=nine + timedelta(hours=1),
                    subject=f"定例 with {who}",
                    status="confirmed",
                    revision=0,
                    attributes={},
                    created_at=old,
                    updated_at=old,
                    timeline=True,
                )
                .returning(a.c.id)
            ).scalar_one()
            conn.execute(
                t.table(t.ActivityParticipant).insert(),
                [
                    {
                        "activity_id": aid,
                        "email": f"{who}@own.example.jp",
                        "role": "organizer",
                        "staff_user_id": world.staff[who],
                        "person_id": None,
                    },
                    {
                        "activity_id": aid,
                        "email": f"customer-of-{who}@client.example.com",
                        "role": "attendee",
                        "staff_user_id": None,
                        "person_id": world.customer[who],
                    },
                ],
            )
            d = t.table(t.Deal)
            did = conn.execute(
                d.insert()
                .values(
                    name=f"Quiet deal of {who}",
                    stage="提案",
                    amount=500000,
                    currency="JPY",
                    status="open",
                    owner_id=world.staff[who],
                    attributes={},
                    created_at=old,
                    updated_at=old,
                )
                .returning(d.c.id)
            ).scalar_one()
            conn.execute(
                t.table(t.DealStageHistory)
                .insert()
                .values(deal_id=did, stage="提案", entered_at=old)
            )
            conn.execute(
                t.table(Reminder)
                .insert()
                .values(
                    rule="idle",
                    subject_kind="deal",
                    subject_id=did,
                    instance="x",
                    owner_id=world.staff[who],
                    status="open",
                    title=f"Call about the deal of {who}",
                    facts={},
                    opened_at=old,
                    message_id=f"<r-{who}@x>",
                    delivery="sent",
                )
            )
    app = from_workspace(workspace(tmp_path, world.engine, monkeypatch))
    c = TestClient(app, follow_redirects=False)
    sign_in(c, "a1")
    page = c.get("/today")
    assert page.status_code == 200
    assert "定例 with a1" in page.text and "09:00" in page.text
    assert "Call about the deal of a1" in page.text and "Quiet deal of a1" in page.text
    # nothing of the other rep's day (the page's random CSRF tokens may spell "b1": left out)
    shown = page.text.replace("b1@", "").replace(csrf_of(page.text), "")
    assert "b1" not in shown
