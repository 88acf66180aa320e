"""Exact warehouse rows for the report tests: every timestamp chosen by the test, in UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, insert

from warehouse import schema as t

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


class Seed:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._n = 0

    def _id(self, model: type[t.Base], values: dict[str, Any]) -> int:
        tbl = t.table(model)
        return int(self.conn.execute(insert(tbl).returning(tbl.c.id), values).scalar_one())

    def team(self, name: str) -> int:
        return self._id(t.Team, {"name": name})

    def staff(self, email: str, name: str | None, team_id: int | None = None) -> int:
        return self._id(
            t.StaffUser,
            {"email": email, "name": name, "team_id": team_id, "visibility": "own"},
        )

    def org(self, name: str) -> int:
        return self._id(
            t.Organization,
            {
                "name": name,
                "name_normalized": name,
                "attributes": {},
                "created_at": T0,
                "updated_at": T0,
            },
        )

    def person(self, email: str, name: str, org_id: int | None) -> int:
        pid = self._id(
            t.Person,
            {
                "full_name": name,
                "primary_email": email,
                "organization_id": org_id,
                "attributes": {},
                "created_at": T0,
                "updated_at": T0,
            },
        )
        self.conn.execute(insert(t.PersonEmail), {"email": email, "person_id": pid})
        return pid

    def activity(
        self,
        kind: str,
        at: datetime,
        participants: list[tuple[str, str, int | None, int | None]],
        *,
        subject: str | None = None,
        direction: str | None = None,
        thread: str | None = None,
        status: str = "confirmed",
        deal_id: int | None = None,
        minutes: int = 60,
    ) -> int:
        """``participants``: (email, role, person_id, staff_user_id)."""
        self._n += 1
        aid = self._id(
            t.Activity,
            {
                "key": f"act-{self._n}",
                "kind": kind,
                "occurred_at": at,
                "ends_at": at + timedelta(minutes=minutes) if kind == "meeting" else None,
                "direction": direction,
                "subject": subject,
                "thread_key": thread,
                "status": status,
                "revision": 0,
                "deal_id": deal_id,
                "attributes": {},
                "created_at": at,
                "updated_at": at,
            },
        )
        for email, role, pid, sid in participants:
            self.conn.execute(
                insert(t.ActivityParticipant),
                {
                    "activity_id": aid,
                    "email": email,
                    "role": role,
                    "person_id": pid,
                    "staff_user_id": sid,
                },
            )
        return aid

    def deal(
        self,
        name: str,
        stage: str,
        amount: str | None,
        *,
        history: list[tuple[str, datetime]],
        created_at: datetime | None = None,
        status: str = "open",
        probability: float | None = None,
        owner_id: int | None = None,
        org_id: int | None = None,
        close: Any = None,
        currency: str = "JPY",
    ) -> int:
        created = created_at or history[0][1]
        did = self._id(
            t.Deal,
            {
                "name": name,
                "stage": stage,
                "amount": Decimal(amount) if amount is not None else None,
                "currency": currency,
                "probability": probability,
                "expected_close": close,
                "status": status,
                "owner_id": owner_id,
                "organization_id": org_id,
                "attributes": {},
                "created_at": created,
                "updated_at": created,
            },
        )
        for st, at in history:
            self.conn.execute(
                insert(t.DealStageHistory), {"deal_id": did, "stage": st, "entered_at": at}
            )
        return did
