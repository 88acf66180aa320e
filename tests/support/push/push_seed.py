"""Small, exact warehouse fixtures for the push side (segments, consent, campaigns, reminders).

Rows are inserted directly so each test controls every date; ``AS_OF`` is the fixed "now".
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, insert

from flows.push.config import PushConfig, push_config
from flows.workspace import Workspace
from warehouse import schema as t
from warehouse.activation.consent import ConsentEvent, record_consent

AS_OF = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo


def ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


class Seeder:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._act = 0

    def _id(self, model: type[t.Base], values: dict[str, Any]) -> int:
        return int(
            self.conn.execute(insert(model).returning(model.id), values).scalar_one()  # type: ignore[attr-defined]
        )

    def team(self, name: str) -> int:
        return self._id(t.Team, {"name": name})

    def staff(self, email: str, name: str, team_id: int | None = None) -> int:
        return self._id(t.StaffUser, {"email": email, "name": name, "team_id": team_id})

    def org(self, name: str, **kw: Any) -> int:
        values = {
            "name": name,
            "name_normalized": name.lower(),
            "attributes": {},
            "created_at": ago(400),
            "updated_at": ago(400),
            **kw,
        }
        return self._id(t.Organization, values)

    def person(self, email: str | None, **kw: Any) -> int:
        values = {
            "primary_email": email,
            "attributes": {},
            "created_at": ago(300),
            "updated_at": ago(300),
            **kw,
        }
        pid = self._id(t.Person, values)
        if email:
            self.conn.execute(insert(t.PersonEmail), {"email": email, "person_id": pid})
        return pid

    def deal(self, name: str, **kw: Any) -> int:
        values = {
            "name": name,
            "status": "open",
            "currency": "JPY",
            "attributes": {},
            "created_at": ago(200),
            "updated_at": ago(200),
            **kw,
        }
        return self._id(t.Deal, values)

    def activity(
        self,
        kind: str,
        at: datetime,
        *,
        direction: str | None = None,
        people: list[tuple[int, str]] = (),  # type: ignore[assignment]
        staff: list[tuple[int, str]] = (),  # type: ignore[assignment]
        deal_id: int | None = None,
        ends_at: datetime | None = None,
        status: str = "confirmed",
    ) -> int:
        self._act += 1
        aid = self._id(
            t.Activity,
            {
                "key": f"act-{self._act}-{at.isoformat()}",
                "kind": kind,
                "occurred_at": at,
                "ends_at": ends_at,
                "direction": direction,
                "subject": f"{kind} {self._act}",
                "status": status,
                "revision": 0,
                "deal_id": deal_id,
                "attributes": {},
                "created_at": at,
                "updated_at": at,
            },
        )
        for pid, role in people:
            self.conn.execute(
                insert(t.ActivityParticipant),
                {"activity_id": aid, "email": f"p{pid}@x.example", "role": role, "person_id": pid},
            )
        for sid, role in staff:
            self.conn.execute(
                insert(t.ActivityParticipant),
                {
                    "activity_id": aid,
                    "email": f"s{sid}@own.example",
                    "role": role,
                    "staff_user_id": sid,
                },
            )
        return aid

    def order(self, person_id: int, amount: int, at: datetime) -> None:
        self.conn.execute(
            insert(t.Order),
            {"person_id": person_id, "amount": Decimal(amount), "ordered_at": at},
        )


def seed_people(engine: Engine) -> dict[str, int]:
    """A small company: two teams, two customers' organizations, five people (one deleted)."""
    with engine.begin() as conn:
        s = Seeder(conn)
        tokyo = s.team("東京営業")
        osaka = s.team("大阪営業")
        alice = s.staff("alice@own.example", "佐藤 愛", tokyo)
        bob = s.staff("bob@own.example", "Bob", osaka)
        acme = s.org(
            "株式会社アクメ",
            industry="製造業",
            address="東京都千代田区丸の内1-1",
            owner_id=alice,
            attributes={"tier": "A"},
            domain="acme.example",
        )
        kansai = s.org(
            "関西テック",
            industry="IT",
            address="大阪府大阪市北区1-2",
            owner_id=bob,
            attributes={"tier": "B"},
        )
        ids = {
            "alice": alice,
            "bob": bob,
            "acme": acme,
            "kansai": kansai,
            "hanako": s.person(
                "hanako@acme.example",
                full_name="山田 花子",
                family_name="山田",
                given_name="花子",
                gender="female",
                birth_date=date(1990, 5, 1),  # 36
                organization_id=acme,
                owner_id=alice,
                lifecycle_stage="customer",
                attributes={"plan": "gold", "score": 80, "newsletter": True},
            ),
            "taro": s.person(
                "taro@kansai.example",
                full_name="鈴木 太郎",
                gender="male",
                birth_date=date(1985, 1, 10),  # 41
                organization_id=kansai,
                owner_id=bob,
                lifecycle_stage="lead",
                attributes={"plan": "silver", "score": 40},
            ),
            "mika": s.person(
                "mika@acme.example",
                full_name="Mika O'Brien",
                gender="female",
                birth_date=date(1996, 11, 28),  # 29, turns 30 tomorrow
                organization_id=acme,
                owner_id=alice,
                lifecycle_stage="customer",
                attributes={"plan": "50%_off"},
            ),
            "keiko": s.person(
                "keiko@other.example",
                full_name="伊藤 恵子",
                gender="female",
                birth_date=date(1987, 11, 27),  # 39 today
                lifecycle_stage="lead",
            ),
            "ghost": s.person(
                "ghost@acme.example",
                gender="female",
                birth_date=date(1991, 1, 1),
                organization_id=acme,
                deleted_at=ago(1),
            ),
        }
        p = ids
        s.activity("email", ago(10), direction="inbound", people=[(p["hanako"], "from")])
        s.activity("email", ago(5), direction="outbound", people=[(p["taro"], "to")])
        s.activity("email", ago(45), direction="inbound", people=[(p["taro"], "from")])
        s.activity("meeting", ago(20), people=[(p["taro"], "attendee")])
        s.activity("meeting", ago(3), people=[(p["taro"], "attendee")])
        s.activity("meeting", ago(2), people=[(p["mika"], "attendee")], status="cancelled")
        s.deal("アクメ 提案", organization_id=acme, stage="提案", owner_id=alice)
        s.deal(
            "関西 受注",
            organization_id=kansai,
            stage="受注",
            status="won",
            amount=Decimal(2_000_000),
            updated_at=ago(60),
        )
        s.deal(
            "恵子 古い受注",
            person_id=p["keiko"],
            stage="受注",
            status="won",
            amount=Decimal(500_000),
            updated_at=ago(400),
        )
        # RFM: hanako recent+frequent+big, taro old+rare+small, mika middle, keiko has a won deal
        for d in (5, 20, 40, 60):
            s.order(p["hanako"], 300_000, ago(d))
        s.order(p["taro"], 1_000, ago(700))
        s.order(p["mika"], 50_000, ago(100))
        s.order(p["mika"], 50_000, ago(90))
    return ids


def make_cfg(
    root: Path,
    *,
    segments: dict[str, Any],
    campaigns: dict[str, Any] | None = None,
    reminders: dict[str, Any] | None = None,
    outbound: dict[str, Any] | None = None,
) -> PushConfig:
    """The push settings of a workspace file in ``root`` (not written: validated in memory)."""
    ob = {
        "sender": "株式会社サンプル 営業部 <sales@own.example>",
        "postal_address": "東京都千代田区千代田1-1",
        "unsubscribe_address": "unsubscribe@own.example",
        "quiet_hours": None,
        **(outbound or {}),
    }
    ws = Workspace.model_validate(
        {
            "company": {"name": "株式会社サンプル", "domains": ["own.example"]},
            "segments": segments,
            "campaigns": campaigns or {},
            "reminders": reminders or {},
            "outbound": ob,
        }
    ).model_copy(update={"path": root / "kizuna.yaml"})
    return push_config(ws)


def consent(engine: Engine, pid: int, status: str, purpose: str = "marketing_mail") -> None:
    with engine.begin() as conn:
        record_consent(
            conn,
            ConsentEvent(
                person_id=pid,
                purpose=purpose,  # type: ignore[arg-type]
                status=status,  # type: ignore[arg-type]
                source="web form",
                evidence=f"form-{pid}-{status}-{datetime.now(UTC).timestamp()}",
                at=datetime.now(UTC),
            ),
        )
