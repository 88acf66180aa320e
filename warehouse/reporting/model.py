"""The shapes a daily report (日報) is made of, and the day it covers.

Plain dataclasses, so templates and tests can build and read them without a database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo


def utc(ts: datetime) -> datetime:
    """SQLite hands back naive UTC wall times; PostgreSQL aware ones. Both become aware UTC."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


@dataclass(frozen=True)
class Day:
    """One calendar day in a zone, as the half-open UTC interval [start, end)."""

    date: date
    tz: str
    start: datetime
    end: datetime

    def local(self, ts: datetime) -> datetime:
        return utc(ts).astimezone(ZoneInfo(self.tz))


def day_window(d: date, tz: str) -> Day:
    """Midnight to midnight in ``tz`` (a DST day is 23 or 25 hours long, not 24)."""
    zone = ZoneInfo(tz)
    start = datetime.combine(d, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(d + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return Day(d, tz, start, end)


@dataclass(frozen=True)
class Staff:
    id: int
    email: str
    name: str | None

    @property
    def label(self) -> str:
        return self.name or self.email


@dataclass(frozen=True)
class Attendee:
    email: str
    name: str | None
    company: str | None = None
    person_id: int | None = None
    organization_id: int | None = None
    staff_user_id: int | None = None

    @property
    def label(self) -> str:
        return self.name or self.email


@dataclass(frozen=True)
class DealRef:
    id: int
    name: str
    stage: str | None
    amount: Decimal | None
    currency: str
    company: str | None


@dataclass(frozen=True)
class MeetingItem:
    activity_id: int
    start: datetime
    end: datetime | None
    subject: str | None
    location: str | None
    customers: list[Attendee]
    staff: list[Attendee]
    deals: list[DealRef]

    @property
    def companies(self) -> list[str]:
        return list(dict.fromkeys(a.company for a in self.customers if a.company))


@dataclass
class MailThread:
    thread: str
    subject: str | None
    counterparts: list[Attendee]
    sent: int = 0
    received: int = 0
    first: datetime | None = None
    last: datetime | None = None


@dataclass
class MailCustomer:
    """Mail with one customer (a company, or a person without one), thread by thread."""

    label: str
    organization_id: int | None
    threads: list[MailThread] = field(default_factory=list)

    @property
    def sent(self) -> int:
        return sum(x.sent for x in self.threads)

    @property
    def received(self) -> int:
        return sum(x.received for x in self.threads)


@dataclass(frozen=True)
class DealChange:
    deal: DealRef
    at: datetime
    from_stage: str | None
    to_stage: str | None
    new: bool


@dataclass(frozen=True)
class FollowUp:
    meeting: MeetingItem
    days_since: int


@dataclass
class DailyData:
    staff: Staff
    day: Day
    meetings: list[MeetingItem]
    mail: list[MailCustomer]
    internal_mail: int
    deal_changes: list[DealChange]
    follow_ups: list[FollowUp]
    next_day: date
    next_meetings: list[MeetingItem]

    @property
    def sent(self) -> int:
        return sum(c.sent for c in self.mail)

    @property
    def received(self) -> int:
        return sum(c.received for c in self.mail)

    @property
    def new_deals(self) -> list[DealChange]:
        return [c for c in self.deal_changes if c.new]

    @property
    def stage_changes(self) -> list[DealChange]:
        return [c for c in self.deal_changes if not c.new]

    @property
    def empty(self) -> bool:
        return not (self.meetings or self.mail or self.deal_changes)

    def counts(self) -> dict[str, int]:
        return {
            "meetings": len(self.meetings),
            "mail_sent": self.sent,
            "mail_received": self.received,
            "mail_internal": self.internal_mail,
            "deals_touched": len(self.deal_changes),
            "follow_ups": len(self.follow_ups),
            "next_meetings": len(self.next_meetings),
        }
