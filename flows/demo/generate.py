"""``kizuna demo``: a sample company workspace with realistic exports, mail and calendars.

``generate`` writes the files and the commented ``kizuna.yaml`` that reads them; the CLI
then syncs it like any workspace. One seed gives the same files byte for byte on the same
day (``today`` anchors the dates, so the calendar window always has meetings in it).

Layout::

    kizuna.yaml
    data/customers.csv      cp932, CRLF, Japanese headers (Excel in Japan), a few bad rows
    data/deals.xlsx         案件 with フェーズ, "¥1,200,000"-style amounts, dates as text or dates
    data/mail/inbox.mbox    received mail: ISO-2022-JP, Shift_JIS (cp932), UTF-8; threads
    data/mail/sent.mbox     sent mail (mail between staff is in both mailboxes)
    data/calendars/*.ics    one calendar per rep: meetings, recurring meetings across zones
    data/deal_lines.csv     商談明細 for the deals (cp932), read by quotes
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from flows.demo.calendars import write_calendars
from flows.demo.exports import BAD_CUSTOMER_ROWS, write_customers, write_deals
from flows.demo.mailbox import MALFORMED, write_mail
from flows.demo.quotes import SECTIONS, SELLER_NUMBER, write_deal_lines
from flows.demo.world import OWN_DOMAIN, OWN_NAME, build_world

WORKSPACE = """\
# Kizuna sample workspace, written by `kizuna demo` (seed {seed}).
# Everything under data/ is generated; edit a file and run `kizuna sync -w {file}` again to
# see an incremental sync (only what changed is written).
version: 1

company:
  name: {company}
  # Mail and meetings between these domains are internal; people there are staff.
  domains: [{domain}]
  time_zone: Asia/Tokyo      # all-day meetings and floating times are read in this zone
  phone_region: JP

warehouse:
  # A SQLite file next to this one. Point it at PostgreSQL with
  #   url: postgresql+psycopg://user@host/kizuna   (or set KIZUNA_WAREHOUSE_URL)
  url: sqlite:///kizuna.db

sources:
  # Customer list exported from Excel: Shift_JIS (cp932) with CRLF, Japanese headers.
  # 顧客ID identifies a row; rows with a bad address, an impossible date, a repeated or
  # missing 顧客ID are quarantined (see `kizuna status`), the rest are loaded.
  customers:
    type: spreadsheet
    path: data/customers.csv
    key: 顧客ID
    encoding: auto             # auto | utf-8 | utf-8-sig | cp932
    on_missing: mark_deleted   # a row gone from the file: mark_deleted | keep

  # Deals (案件) from an .xlsx workbook; 担当者メール links each deal to its contact.
  deals:
    type: spreadsheet
    path: data/deals.xlsx
    key: 案件ID
    on_missing: mark_deleted
    columns:
      担当者メール: person.email

  # An mbox export of the team's mail (inbox and sent). Threads, directions and
  # participants are derived from the headers; people are matched by address.
  mail:
    type: mail
    path: data/mail

  # Calendar exports (.ics), one per rep. Recurring meetings are expanded from
  # expand_past_days ago to expand_future_days ahead.
  calendar:
    type: ics
    path: data/calendars
    expand_past_days: 180
    expand_future_days: 90
"""


@dataclass(frozen=True)
class DemoCounts:
    """What ``generate`` wrote, for tests and the CLI to compare with what was synced."""

    customers_rows: int
    customers_bad: int
    deals: int
    messages: int
    messages_bad: int
    events: int
    deal_lines: int
    companies: int
    staff: int


def generate(
    directory: Path, *, messages: int = 3000, seed: int = 7, today: date | None = None
) -> Path:
    """Write the sample workspace into ``directory``; returns the path of its kizuna.yaml."""
    return generate_with_counts(directory, messages=messages, seed=seed, today=today)[0]


def generate_with_counts(
    directory: Path, *, messages: int = 3000, seed: int = 7, today: date | None = None
) -> tuple[Path, DemoCounts]:
    day = today or date.today()
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "data"
    data.mkdir(exist_ok=True)
    world = build_world(seed, day)
    rows = write_customers(world, data / "customers.csv")
    deals = write_deals(world, data / "deals.xlsx")
    mails = write_mail(world, data / "mail", messages)
    events = write_calendars(world, data / "calendars")
    lines = write_deal_lines(world, data / "deal_lines.csv")
    ws_file = directory / "kizuna.yaml"
    from flows.demo.push import demo_campaign_config

    push = yaml.safe_dump(
        demo_campaign_config(OWN_DOMAIN, OWN_NAME), allow_unicode=True, sort_keys=False
    )
    ws_file.write_text(
        WORKSPACE.format(seed=seed, file=ws_file.name, company=OWN_NAME, domain=OWN_DOMAIN)
        + SECTIONS.format(company=OWN_NAME, number=SELLER_NUMBER)
        + "\n# Segments, campaigns and reminders of the sample company (see `kizuna init`'s\n"
        + "# template for the documented grammar).\n"
        + push,
        encoding="utf-8",
    )
    counts = DemoCounts(
        customers_rows=rows,
        customers_bad=BAD_CUSTOMER_ROWS,
        deals=deals,
        messages=mails,
        messages_bad=MALFORMED,
        events=events,
        deal_lines=lines,
        companies=len(world.companies),
        staff=len(world.staff),
    )
    return ws_file, counts
