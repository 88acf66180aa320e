"""Staff accounts: argon2 password hashes, roles, the lock-out after repeated failures.

Passwords are hashed with argon2id (argon2-cffi's defaults, which follow RFC 9106's
recommendation) and re-hashed on sign-in when those parameters change. A wrong password
counts against the account; the fifth in a row locks it for ``LOCK_MINUTES`` (an admin's
password reset unlocks it). An unknown address still costs one hash, so response time does not
tell which addresses have accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, func, select, update

from kizuna.errors import ConfigError
from warehouse import schema as t
from warehouse.access.schema import RoleScope, StaffAccount
from warehouse.access.scope import ROLES, SCOPES
from warehouse.state import now

MAX_FAILURES = 5
LOCK_MINUTES = 15
MIN_PASSWORD = 10
MAX_PASSWORD = 1024  # argon2 hashes any length; the bound keeps one request's work small
_HASHER = PasswordHasher()
_DUMMY = _HASHER.hash("kizuna-no-such-account")


class AccountError(ConfigError):
    """An account command named someone or something that does not exist or cannot be."""


@dataclass(frozen=True)
class SignIn:
    """The outcome of one attempt: the staff id when it worked, else why not (one word)."""

    staff_id: int | None
    reason: str  # ok | wrong | locked
    locked_until: datetime | None = None


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(
            f"a password needs at least {MIN_PASSWORD} characters",
            fix="choose a longer one (a passphrase of a few words works well)",
        )
    if len(password) > MAX_PASSWORD:
        raise AccountError("the password is too long", fix=f"use at most {MAX_PASSWORD} characters")
    return _HASHER.hash(password)


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}", fix=f"use one of {', '.join(ROLES)}")
    return role


def staff_id_of(conn: Connection, email: str) -> int | None:
    s = t.table(t.StaffUser)
    got = conn.execute(
        select(s.c.id).where(func.lower(s.c.email) == email.strip().lower())
    ).scalar()
    return int(got) if got is not None else None


def _team_id(conn: Connection, team: str) -> int:
    tm = t.table(t.Team)
    got = conn.execute(select(tm.c.id).where(tm.c.name == team)).scalar()
    if got is None:
        got = conn.execute(tm.insert().values(name=team).returning(tm.c.id)).scalar_one()
    return int(got)


def add(
    conn: Connection,
    email: str,
    role: str,
    password: str,
    name: str | None = None,
    team: str | None = None,
    create: bool = False,
) -> int:
    """Give a staff user an account; with ``create``, add the staff user too (and the team)."""
    _check_role(role)
    digest = hash_password(password)
    sid = staff_id_of(conn, email)
    s = t.table(t.StaffUser)
    if sid is None:
        if not create:
            raise AccountError(
                f"no staff user has the address {email!r}",
                fix="sync a source that names them, or pass --create with --name and --team",
            )
        values: dict[str, Any] = {"email": email.strip().lower(), "name": name}
        if team:
            values["team_id"] = _team_id(conn, team)
        sid = int(conn.execute(s.insert().values(**values).returning(s.c.id)).scalar_one())
    elif team:
        conn.execute(update(s).where(s.c.id == sid).values(team_id=_team_id(conn, team)))
    if conn.execute(select(StaffAccount.role).where(StaffAccount.staff_user_id == sid)).first():
        raise AccountError(
            f"{email} already has an account", fix="use `kizuna users set-role` or reset-password"
        )
    ts = now()
    conn.execute(
        t.table(StaffAccount)
        .insert()
        .values(
            staff_user_id=sid,
            password_hash=digest,
            role=role,
            failed_logins=0,
            password_changed_at=ts,
            created_at=ts,
            updated_at=ts,
        )
    )
    return sid


def _account_id(conn: Connection, email: str) -> int:
    sid = staff_id_of(conn, email)
    has = (
        sid is not None
        and conn.execute(select(StaffAccount.role).where(StaffAccount.staff_user_id == sid)).first()
    )
    if sid is None or not has:
        raise AccountError(f"{email} has no account", fix="add one with `kizuna users add`")
    return sid


def set_role(conn: Connection, email: str, role: str) -> None:
    _check_role(role)
    sid = _account_id(conn, email)
    conn.execute(
        update(StaffAccount)
        .where(StaffAccount.staff_user_id == sid)
        .values(role=role, updated_at=now())
    )


def reset_password(conn: Connection, email: str, password: str) -> None:
    """A new password; unlocks the account and ends its sessions."""
    digest = hash_password(password)
    sid = _account_id(conn, email)
    ts = now()
    conn.execute(
        update(StaffAccount)
        .where(StaffAccount.staff_user_id == sid)
        .values(
            password_hash=digest,
            failed_logins=0,
            locked_until=None,
            password_changed_at=ts,
            updated_at=ts,
        )
    )


def set_scope(conn: Connection, role: str, scope: str) -> None:
    """The rule an admin sets per role: ``own``, ``team`` or ``all``."""
    _check_role(role)
    if scope not in SCOPES:
        raise AccountError(f"unknown scope {scope!r}", fix=f"use one of {', '.join(SCOPES)}")
    rs = t.table(RoleScope)
    done = conn.execute(
        update(rs).where(rs.c.role == role).values(scope=scope, updated_at=now())
    ).rowcount
    if not done:
        conn.execute(rs.insert().values(role=role, scope=scope, updated_at=now()))


def sign_in(conn: Connection, email: str, password: str, at: datetime | None = None) -> SignIn:
    """Check a password, counting failures and locking the account after ``MAX_FAILURES``."""
    at = at or now()
    sid = staff_id_of(conn, email[:320])
    acc = t.table(StaffAccount)
    row = None
    if sid is not None:
        row = conn.execute(
            select(acc.c.password_hash, acc.c.failed_logins, acc.c.locked_until).where(
                acc.c.staff_user_id == sid
            )
        ).first()
    if row is None:
        _verify(_DUMMY, password)
        return SignIn(None, "wrong")
    if row.locked_until is not None and row.locked_until > at:
        return SignIn(None, "locked", row.locked_until)
    if _verify(row.password_hash, password):
        values: dict[str, Any] = {"failed_logins": 0, "locked_until": None}
        if _HASHER.check_needs_rehash(row.password_hash):
            values["password_hash"] = _HASHER.hash(password)
        conn.execute(update(acc).where(acc.c.staff_user_id == sid).values(**values))
        return SignIn(sid, "ok")
    failures = (row.failed_logins or 0) + 1
    until = at + timedelta(minutes=LOCK_MINUTES) if failures >= MAX_FAILURES else None
    conn.execute(
        update(acc)
        .where(acc.c.staff_user_id == sid)
        .values(failed_logins=0 if until else failures, locked_until=until)
    )
    return SignIn(None, "locked" if until else "wrong", until)


def _verify(digest: str, password: str) -> bool:
    if len(password) > MAX_PASSWORD:
        return False
    try:
        return _HASHER.verify(digest, password)
    except (VerificationError, InvalidHashError):
        return False


def password_changed_at(conn: Connection, staff_id: int) -> datetime | None:
    return conn.execute(
        select(StaffAccount.password_changed_at).where(StaffAccount.staff_user_id == staff_id)
    ).scalar()


def listing(conn: Connection) -> list[dict[str, Any]]:
    """Every account with its staff user and team, for ``kizuna users list``."""
    s, tm, acc = t.table(t.StaffUser), t.table(t.Team), t.table(StaffAccount)
    q = (
        select(s.c.email, s.c.name, tm.c.name.label("team"), acc.c.role, acc.c.locked_until)
        .join(acc, acc.c.staff_user_id == s.c.id)
        .outerjoin(tm, tm.c.id == s.c.team_id)
        .order_by(s.c.email)
    )
    return [dict(r._mapping) for r in conn.execute(q)]
