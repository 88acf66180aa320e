"""The demo's quote: a line-items sheet for the sample deals, and one 見積書 issued after sync.

``write_deal_lines`` writes ``data/deal_lines.csv`` (cp932, like the customer export): each
deal's license and 導入支援 days, and for some a 研修 lunch at the 8% 軽減税率, with its own
random stream so the other generated files stay byte for byte what they were. ``demo_quote``
issues one quote for deal D-0001 (or returns the one a previous run issued, so a rerun of
the demo does not pile up numbers).
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path
from typing import Any

from flows.demo.world import World

QUOTE_DEAL = "D-0001"
"""The deal the demo quotes (its 案件ID in deals.xlsx)."""

HEADERS = ("明細ID", "案件ID", "行番号", "品名", "数量", "単位", "単価", "税率")
SELLER_NUMBER = "T6012345678901"
"""A made-up 登録番号 with a valid check digit (no real company's)."""

SECTIONS = """
  # Line items (商談明細) for the deals: 案件ID is the deal's 案件ID in deals.xlsx. Quotes
  # (`kizuna quote create <deal>`) take their lines from here.
  deal_lines:
    type: spreadsheet
    path: data/deal_lines.csv
    key: 明細ID
    encoding: auto
    on_missing: mark_deleted

# The seller's side of every 見積書 (`kizuna quote create`).
quotes:
  seller:
    name: {company}
    address: 〒100-0005 東京都千代田区丸の内1-1-1
    phone: 03-0000-0000
    registration_number: {number}   # 適格請求書発行事業者登録番号 (a made-up one)
  series: Q-{{yyyy}}-{{seq:04}}
  validity_days: 30
  payment_terms: 月末締め翌月末払い
  remarks: 本見積書の有効期限内にご発注ください。
"""


def write_deal_lines(world: World, path: Path) -> int:
    """Write ``deal_lines.csv``; returns the number of rows."""
    r = random.Random(world.seed * 7919 + 15)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADERS)
    n = 0
    for d in world.deals:
        product = d.name.split(" ")[-1]
        days = r.randrange(1, 5)
        setup = days * 60_000
        rows = [
            (f"{product}（年額）", "1", "式", f"{d.amount - setup:,}", "10%"),
            ("導入支援", str(days), "人日", "60,000", "10%"),
        ]
        if r.random() < 0.2:
            rows.append(("研修時 昼食（弁当）", str(r.randrange(10, 31)), "個", "1,000", "8%"))
        for i, (text, qty, unit, price, rate) in enumerate(rows, 1):
            n += 1
            w.writerow((f"{d.did}-{i}", d.did, i, text, qty, unit, price, rate))
    path.write_bytes(buf.getvalue().encode("cp932"))
    return n


def demo_quote(ws_file: Path) -> dict[str, Any] | None:
    """Issue the demo's quote (number, totals and files), or the latest one already issued."""
    from flows import config
    from flows.quotes import issue
    from warehouse.db import open_warehouse
    from warehouse.quotes import documents

    ws = config.load(ws_file)
    engine = open_warehouse(ws.warehouse_url)
    try:
        with engine.connect() as conn:
            deal_id = documents.deal_by_source(conn, "deals", QUOTE_DEAL)
            if deal_id is None:
                return None
            done = documents.history(conn, deal_id)
        if done:
            return done[0]
        return issue.create(ws, str(deal_id), engine=engine)
    finally:
        engine.dispose()
