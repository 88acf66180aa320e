"""The demo's calendar exports: one ``.ics`` per sales rep, as calendar programs export them.

Customer meetings (attendees are contacts and staff), the weekly 営業定例 present in every
rep's file (one UID in many files, with a holiday EXDATE and one moved instance), monthly
meetings with customers abroad in America/Los_Angeles and Europe/London, an all-day trade
fair, a cancelled meeting and a rescheduled one (SEQUENCE 1).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, Timezone, vCalAddress, vText

from flows.demo.world import OWN_DOMAIN, PRODUCTS, Contact, Staff, World

JST = ZoneInfo("Asia/Tokyo")
LOCATIONS = (
    "オンライン（Zoom）",
    "オンライン（Teams）",
    "当社 会議室A",
    "当社 会議室B",
    "{company} 本社",
)


def _addr(
    email: str, name: str, *, role: str = "REQ-PARTICIPANT", partstat: str = ""
) -> vCalAddress:
    a = vCalAddress(f"mailto:{email}")
    a.params["CN"] = vText(name)
    a.params["ROLE"] = vText(role)
    if partstat:
        a.params["PARTSTAT"] = vText(partstat)
    return a


class _Files:
    def __init__(self, w: World) -> None:
        self.w = w
        self.cals: dict[str, Calendar] = {}
        self.stamp = datetime(w.today.year, w.today.month, w.today.day, tzinfo=ZoneInfo("UTC"))
        for s in w.staff:
            cal = Calendar()
            cal.add("prodid", "-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN")
            cal.add("version", "2.0")
            cal.add("method", "PUBLISH")
            cal.add("x-wr-calname", f"{s.name}の予定表")
            self.cals[s.email] = cal

    def event(
        self,
        owner: Staff,
        uid: str,
        summary: str,
        start: datetime | date,
        end: datetime | date,
        contacts: list[Contact],
        staff: list[Staff],
        *,
        location: str = "",
        description: str = "",
        seq: int = 0,
        extra: dict[str, object] | None = None,
        also_in: list[Staff] | None = None,
    ) -> Event:
        r = self.w.rng
        ev = Event()
        ev.add("uid", uid)
        ev.add("dtstamp", self.stamp)
        ev.add("dtstart", start)
        ev.add("dtend", end)
        ev.add("summary", summary)
        if location:
            ev.add("location", location)
        if description:
            ev.add("description", description)
        ev.add("sequence", seq)
        ev.add("organizer", _addr(owner.email, owner.name, role="CHAIR"))
        for c in contacts:
            state = r.choice(("ACCEPTED", "ACCEPTED", "TENTATIVE", "NEEDS-ACTION", "DECLINED"))
            ev.add("attendee", _addr(c.email, c.name, partstat=state))
        for s in staff:
            ev.add("attendee", _addr(s.email, s.name, partstat="ACCEPTED"))
        for k, v in (extra or {}).items():
            ev.add(k, v)
        for who in [owner, *(also_in or [])]:
            self.cals[who.email].add_component(ev)
        return ev


@lru_cache(maxsize=16)
def _vtimezone(tzid: str, year: int) -> Timezone:
    """A VTIMEZONE with transitions for a few years around ``year`` (built once: it is slow)."""
    return Timezone.from_tzid(tzid, first_date=date(year - 2, 1, 1), last_date=date(year + 5, 1, 1))


def _slot(w: World, day_offset: int, hour: int, tz: ZoneInfo = JST) -> datetime:
    d = w.today + timedelta(days=day_offset)
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return datetime(d.year, d.month, d.day, hour, w.rng.choice((0, 0, 30)), tzinfo=tz)


def write_calendars(w: World, folder: Path) -> int:
    """Write one ``.ics`` per rep; returns the number of distinct events (UIDs)."""
    folder.mkdir(parents=True, exist_ok=True)
    r = w.rng
    files = _Files(w)
    uids = 0
    manager, reps = w.staff[0], w.staff[1:]

    # Customer meetings, past and upcoming.
    for n in range(1, 181):
        rep = r.choice(reps)
        owned = [c for c in w.contacts if c.company.owner is rep and not c.company.english]
        c = r.choice(owned or w.contacts)
        colleagues = [x for x in w.by_company[c.company.domain] if x is not c]
        people = [c, *r.sample(colleagues, k=min(len(colleagues), r.choice((0, 0, 1, 2))))]
        start = _slot(w, r.randrange(-150, 60), r.randrange(9, 18))
        loc = r.choice(LOCATIONS).format(company=c.company.name)
        files.event(
            rep,
            f"mtg-{n:04d}-{w.seed}@{OWN_DOMAIN}",
            f"{c.company.name}様 {r.choice(PRODUCTS)}打ち合わせ",
            start,
            start + timedelta(hours=1),
            people,
            [manager] if r.random() < 0.2 else [],
            location=loc,
            description=f"{c.company.name} {c.name}様\n議題：{r.choice(PRODUCTS)}のご提案、今後の進め方",
        )
        uids += 1

    # The weekly sales meeting, in every rep's calendar.
    first = _slot(w, -200, 9)
    while first.weekday() != 0:
        first -= timedelta(days=1)
    first = first.replace(hour=9, minute=30)
    holiday = first + timedelta(weeks=10)
    weekly_uid = f"sales-weekly-{w.seed}@{OWN_DOMAIN}"
    files.event(
        manager,
        weekly_uid,
        "営業定例",
        first,
        first + timedelta(hours=1),
        [],
        reps,
        location="当社 会議室A",
        description="週次の営業会議。パイプラインと今週の訪問予定を確認します。",
        extra={"rrule": {"freq": "weekly", "byday": "MO"}, "exdate": holiday},
        also_in=reps,
    )
    moved_from = first + timedelta(weeks=20)
    files.event(
        manager,
        weekly_uid,
        "営業定例（振替）",
        moved_from + timedelta(days=1),
        moved_from + timedelta(days=1, hours=1),
        [],
        reps,
        location="当社 会議室B",
        seq=1,
        extra={"recurrence-id": moved_from},
        also_in=reps,
    )
    uids += 1

    # Monthly meetings with customers abroad, in their own time zones.
    abroad = [c for c in w.contacts if c.company.english]
    for tz_name, hour in (("America/Los_Angeles", 16), ("Europe/London", 9)):
        tz = ZoneInfo(tz_name)
        who = [c for c in abroad if c.company.tz == tz_name] or abroad or w.contacts
        c = r.choice(who)
        rep = c.company.owner
        start = _slot(w, -170, hour, tz).replace(minute=0)
        files.event(
            rep,
            f"monthly-{tz_name.split('/')[1].lower()}-{w.seed}@{OWN_DOMAIN}",
            f"Monthly sync with {c.company.name}",
            start,
            start + timedelta(minutes=45),
            [c],
            [rep] if rep is not manager else [],
            location="Zoom",
            extra={"rrule": {"freq": "monthly", "byday": f"+2{'TH' if hour == 16 else 'TU'}"}},
        )
        uids += 1

    # A trade fair (all day, two days).
    fair = w.today + timedelta(days=21)
    files.event(
        manager,
        f"expo-{w.seed}@{OWN_DOMAIN}",
        "Japan IT Week 出展",
        fair,
        fair + timedelta(days=2),
        [],
        reps[:3],
        location="東京ビッグサイト",
        extra={"transp": "TRANSPARENT"},
        also_in=reps[:3],
    )
    uids += 1

    # A cancelled meeting and a rescheduled one.
    c = r.choice(w.contacts)
    start = _slot(w, 5, 14)
    files.event(
        c.company.owner,
        f"cancelled-{w.seed}@{OWN_DOMAIN}",
        f"{c.company.name}様 定例（中止）",
        start,
        start + timedelta(hours=1),
        [c],
        [],
        seq=1,
        extra={"status": "CANCELLED"},
    )
    c = r.choice(w.contacts)
    start = _slot(w, 9, 15)
    files.event(
        c.company.owner,
        f"rescheduled-{w.seed}@{OWN_DOMAIN}",
        f"{c.company.name}様 お見積りご説明（日程変更）",
        start,
        start + timedelta(hours=1),
        [c],
        [],
        seq=1,
        extra={"last-modified": files.stamp},
    )
    uids += 2

    for s in w.staff:
        cal = files.cals[s.email]
        for tzid in sorted(cal.get_missing_tzids()):
            cal.subcomponents.insert(0, _vtimezone(tzid, w.today.year))
        (folder / f"{s.romaji}.ics").write_bytes(cal.to_ical())
    return uids
