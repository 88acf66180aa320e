"""The demo's spreadsheet exports: a cp932 CSV as Excel writes it in Japan, and an .xlsx.

A few rows are wrong on purpose (an address without a domain, 2026/13/45, a repeated 顧客ID,
a row without its ID) so the first sync shows quarantine at work.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font, PatternFill

from flows.demo.world import World

CSV_HEADERS = (
    "顧客ID",
    "会社名",
    "氏名",
    "フリガナ",
    "メールアドレス",
    "電話番号",
    "部署",
    "役職",
    "業種",
    "担当営業",
    "生年月日",
)
DEAL_HEADERS = (
    "案件ID",
    "案件名",
    "会社名",
    "担当者メール",
    "フェーズ",
    "金額",
    "確度",
    "受注予定日",
    "担当営業",
)
BAD_CUSTOMER_ROWS = 5
"""Rows of customers.csv that the sync must quarantine (see ``write_customers``)."""


def write_customers(world: World, path: Path) -> int:
    """Write ``customers.csv`` (cp932, CRLF); returns the number of data rows."""
    r = world.rng
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_HEADERS)
    rows: list[list[str]] = []
    first_seen: set[str] = set()
    for c in world.contacts:
        comp = c.company
        company = comp.name
        # The first row of a company spells it properly; later rows as colleagues typed it.
        if comp.domain not in first_seen:
            first_seen.add(comp.domain)
        elif comp.variants and r.random() < 0.35:
            company = r.choice(comp.variants)
        sep = " " if comp.english else r.choice((" ", "　", ""))
        name = f"{c.given}{sep}{c.family}" if comp.english else f"{c.family}{sep}{c.given}"
        kana = f"{c.family_kana}{' ' if sep else ''}{c.given_kana}" if c.family_kana else ""
        email = c.email
        if c.personal_email and c.personal_in_export:
            email = f"{c.email}; {c.personal_email}"
        birth = ""
        if c.birth_date is not None:
            birth = r.choice(
                (
                    c.birth_date.strftime("%Y/%m/%d"),
                    f"{c.birth_date.year}/{c.birth_date.month}/{c.birth_date.day}",
                    f"{c.birth_date.year}年{c.birth_date.month}月{c.birth_date.day}日",
                )
            )
        rows.append(
            [
                c.cid,
                company,
                name,
                kana,
                email,
                c.phone,
                c.department,
                c.title,
                comp.industry,
                comp.owner.email,
                birth,
            ]
        )
    # Deliberate mistakes, as hand-kept exports have them.
    rows[10][4] = rows[10][4].split("@")[0] + "＠"  # the domain was never typed
    rows[20][4] = rows[20][4].replace("@", "@@")
    rows[30][10] = "2026/13/45"
    rows.insert(41, [rows[40][0], *rows[41][1:]])  # a 顧客ID typed twice
    rows.insert(51, ["", *rows[51][1:]])  # no 顧客ID at all
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode("cp932"))
    return len(rows)


def write_deals(world: World, path: Path) -> int:
    """Write ``deals.xlsx``: amounts as numbers or "¥1,200,000" text, dates as dates or text."""
    r = world.rng
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "案件一覧"
    ws.append(list(DEAL_HEADERS))
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
    for d in world.deals:
        comp = d.company
        company = r.choice(comp.variants) if comp.variants and r.random() < 0.3 else comp.name
        amount: int | str = d.amount
        roll = r.random()
        if roll < 0.25:
            amount = f"¥{d.amount:,}"
        elif roll < 0.32:
            amount = f"{d.amount // 10_000}万円"
        probability: int | str = d.probability if r.random() < 0.7 else f"{d.probability}%"
        close: datetime | str = datetime(d.close.year, d.close.month, d.close.day)
        if r.random() < 0.2:
            close = d.close.strftime("%Y/%m/%d")
        ws.append(
            [
                d.did,
                d.name,
                company,
                d.contact.email,
                d.stage,
                amount,
                probability,
                close,
                d.owner.email,
            ]
        )
        row = ws.max_row
        if isinstance(amount, int):
            ws.cell(row=row, column=6).number_format = "#,##0"
        if isinstance(close, datetime):
            ws.cell(row=row, column=8).number_format = "yyyy/mm/dd"
    for col, width in zip("ABCDEFGHI", (10, 40, 30, 34, 8, 14, 8, 12, 34), strict=True):
        ws.column_dimensions[col].width = width
    stamp = datetime(world.today.year, world.today.month, world.today.day, 9, 0)
    wb.properties.creator = "Kizuna demo"
    wb.properties.created = stamp
    wb.properties.modified = stamp
    raw = io.BytesIO()
    wb.save(raw)
    path.write_bytes(_fixed_zip_times(raw.getvalue(), stamp))
    return len(world.deals)


def _fixed_zip_times(data: bytes, stamp: datetime) -> bytes:
    """Re-pack the .xlsx with fixed member times so a seed gives identical bytes."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=stamp.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                when = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
                body = re.sub(
                    rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)",
                    rb"\g<1>" + when.encode() + rb"\g<2>",
                    body,
                )
            dst.writestr(fixed, body)
    return out.getvalue()
