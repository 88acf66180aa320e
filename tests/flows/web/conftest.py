"""Two teams in one warehouse, with accounts, customers, deals, mail and an app over them.

Team A: rep ``a1`` and rep ``a2``; team B: rep ``b1``; ``boss`` is an admin, ``mgr`` manages
team A. Each rep owns one customer (a company, a deal, a mail) whose names say whose it is, so
a test can look for team B's names in anything team A is shown.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from flows.web.app import build
from warehouse import schema as t
from warehouse.access import accounts

PASSWORD = "correct horse battery"
NOW = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)


@dataclass
class World:
    engine: Engine
    staff: dict[str, int]
    customer: dict[str, int]  # rep name → person id of their customer
    deal: dict[str, int]
    state_dir: Path

    def client(self) -> TestClient:
        return TestClient(build(self.engine, self.state_dir), follow_redirects=False)


def email(who: str) -> str:
    return f"{who}@own.example.jp"


def seed(engine: Engine) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    staff: dict[str, int] = {}
    customer: dict[str, int] = {}
    deal: dict[str, int] = {}
    with engine.begin() as conn:
        for who, role, team in (
            ("a1", "rep", "Team A"),
            ("a2", "rep", "Team A"),
            ("b1", "rep", "Team B"),
            ("mgr", "manager", "Team A"),
            ("boss", "admin", None),
        ):
            staff[who] = accounts.add(
                conn, email(who), role, PASSWORD, name=f"Staff {who}", team=team, create=True
            )
        names = {
            "a1": ("田中", "太郎", "タナカ", "タロウ"),
            "a2": ("鈴木", "花子", "スズキ", "ハナコ"),
            "b1": ("佐藤", "次郎", "サトウ", "ジロウ"),
        }
        for who, (fam, giv, fk, gk) in names.items():
            org = conn.execute(
                t.table(t.Organization)
                .insert()
                .values(
                    name=f"Company of {who} 株式会社",
                    name_normalized=f"company of {who}",
                    owner_id=staff[who],
                    attributes={},
                    created_at=NOW,
                    updated_at=NOW,
                )
                .returning(t.table(t.Organization).c.id)
            ).scalar_one()
            pid = conn.execute(
                t.table(t.Person)
                .insert()
                .values(
                    record_key=f"P-{who}000000",
                    family_name=fam,
                    given_name=giv,
                    family_name_kana=fk,
                    given_name_kana=gk,
                    full_name=f"{fam} {giv}",
                    primary_email=f"customer-of-{who}@client.example.com",
                    organization_id=org,
                    owner_id=staff[who],
                    attributes={},
                    created_at=NOW,
                    updated_at=NOW,
                )
                .returning(t.table(t.Person).c.id)
            ).scalar_one()
            customer[who] = int(pid)
            conn.execute(
                t.table(t.PersonEmail)
                .insert()
                .values(person_id=pid, email=f"customer-of-{who}@client.example.com")
            )
            conn.execute(
                t.table(t.PersonPhone)
                .insert()
                .values(person_id=pid, phone=f"+8190{staff[who]:08d}")
            )
            did = conn.execute(
                t.table(t.Deal)
                .insert()
                .values(
                    name=f"Deal of {who}",
                    organization_id=org,
                    person_id=pid,
                    stage="提案",
                    amount=1_000_000,
                    currency="JPY",
                    status="open",
                    owner_id=staff[who],
                    attributes={},
                    created_at=NOW,
                    updated_at=NOW,
                )
                .returning(t.table(t.Deal).c.id)
            ).scalar_one()
            deal[who] = int(did)
            conn.execute(
                t.table(t.DealStageHistory)
                .insert()
                .values(deal_id=did, stage="提案", entered_at=NOW)
            )
            aid = conn.execute(
                t.table(t.Activity)
                .insert()
                .values(
                    key=f"mail-{who}",
                    kind="email",
                    occurred_at=NOW - timedelta(hours=2),
                    direction="outbound",
                    subject=f"Mail of {who}",
                    status="confirmed",
                    revision=0,
                    attributes={},
                    created_at=NOW,
                    updated_at=NOW,
                    timeline=True,
                )
                .returning(t.table(t.Activity).c.id)
            ).scalar_one()
            conn.execute(
                t.table(t.ActivityParticipant).insert(),
                [
                    {
                        "activity_id": aid,
                        "email": email(who),
                        "role": "from",
                        "staff_user_id": staff[who],
                        "person_id": None,
                    },
                    {
                        "activity_id": aid,
                        "email": f"customer-of-{who}@client.example.com",
                        "role": "to",
                        "person_id": pid,
                        "staff_user_id": None,
                    },
                ],
            )
    return staff, customer, deal


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id with its production cost (64 MiB, 3 passes) takes a large part of a second
    per hash on a loaded machine; these tests are about who may sign in, not the cost, so they
    hash with the same algorithm at its smallest cost (test_cost_is_production pins the real one).
    """
    from argon2 import PasswordHasher

    from warehouse.access import accounts

    monkeypatch.setattr(
        accounts, "_HASHER", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )


@pytest.fixture
def world(engine: Engine, tmp_path: Path) -> Iterator[World]:
    staff, customer, deal = seed(engine)
    yield World(engine, staff, customer, deal, tmp_path / ".kizuna")


def sign_in(client: TestClient, who: str, password: str = PASSWORD) -> int:
    """Sign in through the form, as a browser does; returns the response status."""
    page = client.get("/sign-in")
    token = csrf_of(page.text)
    r = client.post(
        "/sign-in",
        data={"email": email(who), "password": password, "csrf": token, "next": "/customers"},
    )
    return r.status_code


def csrf_of(html: str) -> str:
    marker = 'name="csrf" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]
