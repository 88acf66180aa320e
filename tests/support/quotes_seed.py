"""A small company with products, deals and deal lines, synced from three CSV exports.

Used by the quotes tests on both databases: the sheets go through the real spreadsheet source
(column map, engine, store), so what a quote reads is what a sync writes.
"""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from flows.engine import run_stream
from flows.sources import spreadsheet as src
from flows.workspace import Company, Workspace

DEALS = [
    ["顧客ID", "会社名", "住所", "氏名", "部署", "メールアドレス", "案件名", "金額"],
    [
        "D001",
        "株式会社みどり商事",
        "東京都港区芝1-2-3",
        "山田 花子",
        "総務部",
        "hanako@midori.co.jp",
        "オフィス移転支援",
        "￥500,000",
    ],
    ["D002", "合同会社あおば", "", "", "", "", "給茶機リース", "120000"],
]
PRODUCTS = [
    ["商品コード", "商品名", "単価", "税率", "単位"],
    ["SV-01", "移転作業一式", "300,000", "10%", "式"],
    ["SV-02", "配線工事", "12,345", "10%", "時間"],
    ["FD-01", "お茶(業務用)", "1,080", "8%", "箱"],
    ["GF-01", "商品券", "10,000", "非課税", "枚"],
]
LINES = [
    ["明細ID", "案件ID", "行番号", "商品コード", "品名", "数量", "単価"],
    ["L1", "D001", "1", "SV-01", "", "1", ""],
    ["L2", "D001", "2", "SV-02", "", "2.5", ""],
    ["L3", "D001", "3", "FD-01", "", "7", ""],
    ["L4", "D001", "4", "", "お値引き", "1", "-20,000"],
    ["L5", "D002", "1", "FD-01", "", "3", "999"],
]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    path.write_bytes(buf.getvalue().encode("cp932"))
    return path


def sync_sheet(engine: Engine, ws: Workspace, name: str, file: str, **cfg: Any) -> None:
    config = src.Config.model_validate({"type": "spreadsheet", "path": file, **cfg})
    for spec in src.streams(name, config, ws):
        run_stream(engine, spec, uuid.uuid4().hex)


def seed(engine: Engine, folder: Path) -> Workspace:
    """Write and sync the three sheets; returns a workspace rooted in ``folder``."""
    ws = Workspace(
        company=Company(name="株式会社サンプル", domains=["sample.co.jp"]),
        path=folder / "kizuna.yaml",
        quotes={
            "seller": {
                "name": "株式会社サンプル",
                "address": "〒100-0001 東京都千代田区千代田1-1",
                "phone": "03-1234-5678",
                "registration_number": "T7000012050002",
            },
            "payment_terms": "月末締め翌月末払い",
            "remarks": "納期はご発注後2週間です。",
        },
    )
    write_csv(folder / "deals.csv", DEALS)
    write_csv(folder / "products.csv", PRODUCTS)
    write_csv(folder / "lines.csv", LINES)
    # Lines before deals on purpose: a line finds its deal when read, not when written.
    sync_sheet(engine, ws, "lines", "lines.csv", key="明細ID")
    sync_sheet(engine, ws, "products", "products.csv", key="商品コード")
    sync_sheet(engine, ws, "deals", "deals.csv")
    return ws
