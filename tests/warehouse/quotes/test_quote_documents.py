"""Issuing quotes from synced deals, products and lines (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from flows.quotes.config import quotes_config
from tests.support.quotes_seed import LINES, seed, sync_sheet, write_csv
from warehouse import schema as t
from warehouse.identity.admin import customer_360
from warehouse.quotes import documents
from warehouse.quotes import schema as q

DAY = date(2026, 12, 3)


@pytest.fixture
def ws(engine: Engine, tmp_path: Path) -> Any:
    return seed(engine, tmp_path)


def test_a_quote_has_the_customer_lines_and_taxes_per_rate(engine: Engine, ws: Any) -> None:
    doc = documents.issue(engine, "オフィス移転支援", quotes_config(ws).settings(), DAY)
    assert doc["number"] == "Q-2026-0001" and doc["revision"] == 1
    assert doc["customer"]["organization"] == "株式会社みどり商事"
    assert doc["customer"]["person"] == "山田 花子" and doc["customer"]["honorific"] == "様"
    assert [ln["description"] for ln in doc["lines"]] == [
        "移転作業一式",
        "配線工事",
        "お茶(業務用)",
        "お値引き",
    ]
    # 300,000 + 2.5 h × 12,345 (30,862) − 20,000 at 10%; 7 × 1,080 at 8%.
    assert doc["by_rate"] == [
        {"rate": 10, "reduced": False, "base": "310862", "tax": "31086", "gross": "341948"},
        {"rate": 8, "reduced": True, "base": "7560", "tax": "604", "gross": "8164"},
    ]
    assert (doc["subtotal"], doc["tax"], doc["total"]) == ("318422", "31690", "350112")
    assert doc["valid_until"] == "2027-01-02"
    assert doc["seller"]["registration_number"] == "T7000012050002"


def test_a_company_without_a_contact_is_addressed_onchu(engine: Engine, ws: Any) -> None:
    doc = documents.issue(engine, "給茶機リース", quotes_config(ws).settings(), DAY)
    assert doc["customer"]["honorific"] == "御中"
    assert doc["lines"][0]["unit_price"] == "999.00"  # the line's own price beats the list's
    assert doc["total"] == str(2997 + 239)


def test_the_quote_is_a_document_activity_on_the_deal(engine: Engine, ws: Any) -> None:
    doc = documents.issue(engine, "オフィス移転支援", quotes_config(ws).settings(), DAY)
    with engine.connect() as conn:
        acts = conn.execute(
            select(t.Activity.kind, t.Activity.deal_id, t.Activity.subject, t.Activity.attributes)
        ).all()
    assert len(acts) == 1
    kind, deal_id, subject, attrs = acts[0]
    assert (kind, deal_id) == ("document", doc["deal_id"])
    assert "Q-2026-0001" in subject
    assert attrs["total"] == "350112" and attrs["quote_number"] == "Q-2026-0001"
    with engine.connect() as conn:
        view = customer_360(conn, doc["customer"]["person_id"])
    assert view is not None
    assert [(x["kind"], x["subject"]) for x in view.activities] == [("document", subject)]


def test_reissue_adds_a_revision_and_never_overwrites(
    engine: Engine, ws: Any, tmp_path: Path
) -> None:
    s = quotes_config(ws).settings()
    first = documents.issue(engine, "オフィス移転支援", s, DAY)
    rows = [*LINES, ["L6", "D001", "5", "SV-02", "", "1", ""]]
    write_csv(tmp_path / "lines.csv", rows)
    sync_sheet(engine, ws, "lines", "lines.csv", key="明細ID")
    second = documents.reissue(engine, first["number"], s, date(2026, 12, 10))
    assert (second["number"], second["revision"]) == (first["number"], 2)
    assert Decimal(second["subtotal"]) == Decimal(first["subtotal"]) + 12_345
    with engine.connect() as conn:
        stored = conn.execute(
            select(q.Quote.revision, q.Quote.total, q.Quote.document).order_by(q.Quote.revision)
        ).all()
        n_acts = len(conn.execute(select(t.Activity.id)).all())
        listed = documents.history(conn)
    assert [(r, int(tot)) for r, tot, _ in stored] == [(1, 350112), (2, 350112 + 13579)]
    assert stored[0][2]["lines"] == first["lines"]  # revision 1 is as it was issued
    assert n_acts == 2
    assert [x["revision"] for x in listed] == [2, 1]


def test_concurrent_issues_get_distinct_numbers(engine: Engine, ws: Any) -> None:
    s = quotes_config(ws).settings()
    got: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(3):
                got.append(documents.issue(engine, "給茶機リース", s, DAY)["number"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert sorted(got) == [f"Q-2026-{i:04d}" for i in range(1, 13)]


@pytest.mark.parametrize(
    ("ref", "problem"),
    [("存在しない案件", "no deal"), ("999999", "no deal")],
)
def test_unknown_deals_are_named(engine: Engine, ws: Any, ref: str, problem: str) -> None:
    with pytest.raises(documents.QuoteError, match=problem):
        documents.issue(engine, ref, quotes_config(ws).settings(), DAY)


def test_a_deal_without_lines_or_prices_says_what_to_add(
    engine: Engine, ws: Any, tmp_path: Path
) -> None:
    s = quotes_config(ws).settings()
    write_csv(tmp_path / "lines.csv", [LINES[0], ["L9", "D002", "1", "NOPE-1", "", "1", ""]])
    sync_sheet(engine, ws, "lines", "lines.csv", key="明細ID")
    with pytest.raises(documents.QuoteError, match=r"NOPE-1.*price list 'standard'"):
        documents.issue(engine, "給茶機リース", s, DAY)
    with pytest.raises(documents.QuoteError, match="no line items"):
        documents.issue(engine, "オフィス移転支援", s, DAY)  # its lines left the sheet


def test_products_and_prices_land_and_a_bad_cell_is_quarantined(
    engine: Engine, ws: Any, tmp_path: Path
) -> None:
    write_csv(
        tmp_path / "products.csv",
        [
            ["商品コード", "商品名", "単価", "税率", "単位", "価格表"],
            ["SV-01", "移転作業一式", "280,000", "10%", "式", "代理店"],
            ["BAD-1", "変な税率", "1,000", "5%", "個", ""],
        ],
    )
    sync_sheet(engine, ws, "products", "products.csv", key="商品コード")
    with engine.connect() as conn:
        prices = conn.execute(
            select(q.Product.code, q.PriceListEntry.price_list, q.PriceListEntry.unit_price)
            .join(q.PriceListEntry, q.PriceListEntry.product_id == q.Product.id)
            .where(q.Product.code == "SV-01")
            .order_by(q.PriceListEntry.price_list)
        ).all()
        bad = conn.execute(select(t.Quarantine.source_id, t.Quarantine.reason)).all()
        codes = set(conn.execute(select(q.Product.code)).scalars())
    assert [(p, int(u)) for _, p, u in prices] == [("standard", 300_000), ("代理店", 280_000)]
    assert bad == [("BAD-1", "税率: not a tax rate: '5%' (write 10%, 8% or 0%)")]
    assert "BAD-1" not in codes


def test_the_customer_is_addressed_as_the_360_view_resolved_them(engine: Engine, ws: Any) -> None:
    """The contact's golden fields (another source knows her newer department and title) and
    the company's address from another record of the same resolved company."""
    from sqlalchemy import insert, select

    from warehouse import records as r
    from warehouse import schema as t
    from warehouse.db import write_transaction
    from warehouse.identity import schema as ids
    from warehouse.state import StreamKey, now
    from warehouse.write.store import apply_page

    with write_transaction(engine) as conn:
        apply_page(conn, StreamKey("crm", "companies"), records=[
            r.Organization(source_id="A1", name="合同会社あおば", address="大阪府大阪市北区梅田1-1")
        ])  # fmt: skip
        pid, org = conn.execute(
            select(t.Deal.person_id, t.Deal.organization_id).where(
                t.Deal.name == "オフィス移転支援"
            )
        ).one()
        tea_org = conn.execute(
            select(t.Deal.organization_id).where(t.Deal.name == "給茶機リース")
        ).scalar_one()
        other = conn.execute(
            select(t.Organization.id).where(t.Organization.address == "大阪府大阪市北区梅田1-1")
        ).scalar_one()
        gold = {
            f: {"value": v, "source": "crm", "record_id": pid, "rule": "most_recent"}
            for f, v in (("department", "経営企画部"), ("title", "部長"))
        }
        conn.execute(insert(ids.IdentityCluster).values(
            entity="person", id=pid, size=2, golden=gold, created_at=now(), updated_at=now()
        ))  # fmt: skip
        low = min(tea_org, other)
        conn.execute(insert(ids.IdentityMember), [
            {"entity": "person", "record_id": pid, "cluster_id": pid, "joined_at": now()},
            {"entity": "organization", "record_id": tea_org, "cluster_id": low, "joined_at": now()},
            {"entity": "organization", "record_id": other, "cluster_id": low, "joined_at": now()},
        ])  # fmt: skip
    s = quotes_config(ws).settings()
    doc = documents.issue(engine, "オフィス移転支援", s, DAY)
    assert (doc["customer"]["department"], doc["customer"]["title"]) == ("経営企画部", "部長")
    assert doc["customer"]["address"] == "東京都港区芝1-2-3"  # its own address stays
    tea = documents.issue(engine, "給茶機リース", s, DAY)
    assert tea["customer"]["address"] == "大阪府大阪市北区梅田1-1"
    assert org != tea_org


def test_the_pipeline_lists_the_latest_quote_of_a_deal(engine: Engine, ws: Any) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import update

    from flows.reports.render import pipeline_html
    from warehouse.reporting.pipeline import pipeline

    with engine.begin() as conn:
        conn.execute(update(t.Deal).values(expected_close=datetime.now(UTC).date(), status="open"))
    s = quotes_config(ws).settings()
    first = documents.issue(engine, "オフィス移転支援", s, DAY)
    documents.reissue(engine, first["number"], s, DAY)
    as_of = datetime.now(UTC)  # quotes are stamped when issued; the report is as of after that
    with engine.connect() as conn:
        p = pipeline(conn, as_of, tz="UTC")
    (line,) = [x for x in p.closing_this_month if x.name == "オフィス移転支援"]
    assert (line.quote_number, line.quote_total) == ("Q-2026-0001 (第2版)", Decimal(350112))
    (other,) = [x for x in p.closing_this_month if x.name == "給茶機リース"]
    assert other.quote_number is None
    page = pipeline_html(p)
    assert "Q-2026-0001 (第2版)" in page and "¥350,112" in page and "<th>見積</th>" in page
