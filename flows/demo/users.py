"""Accounts for the demo's web app: an admin, a manager and reps in two teams, one password.

The reps are the staff who own the most deals (so their pages have something to show), split
between two teams; the manager leads the first. The password is made fresh on every run and
printed once (it is a demo on this machine: the real way is ``kizuna users add``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import desc, func, select

from flows import config
from flows.runtime import engine_for
from warehouse import schema as t
from warehouse.access import accounts

TEAMS = ("東日本営業部", "西日本営業部")


@dataclass(frozen=True)
class DemoUser:
    email: str
    role: str
    team: str | None


def demo_users(ws_file: Path) -> tuple[list[DemoUser], str]:
    """Make (or reset) the demo accounts; returns them and the password they share."""
    ws = config.load(ws_file)
    password = "-".join(secrets.token_hex(3) for _ in range(3))
    d, s = t.table(t.Deal), t.table(t.StaffUser)
    users: list[DemoUser] = []
    with engine_for(ws.warehouse_url).begin() as conn:
        top = conn.execute(
            select(s.c.email)
            .join(d, d.c.owner_id == s.c.id)
            .group_by(s.c.email)
            .order_by(desc(func.count()), s.c.email)
            .limit(4)
        ).scalars()
        for i, mail in enumerate(top):
            users.append(DemoUser(mail, "manager" if i == 0 else "rep", TEAMS[i % 2]))
        domain = ws.company.domains[0] if ws.company.domains else "example.co.jp"
        users.insert(0, DemoUser(f"admin@{domain}", "admin", None))
        for u in users:
            try:  # a second demo run: the same accounts, a fresh password
                accounts.reset_password(conn, u.email, password)
                accounts.set_role(conn, u.email, u.role)
            except accounts.AccountError:
                accounts.add(conn, u.email, u.role, password, team=u.team, create=True)
    return users, password
