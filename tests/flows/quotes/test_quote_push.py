"""``kizuna quote push``: an issued quote written to Salesforce (Quote + QuoteLineItem, on the
local HTTPS fake org) and HubSpot (quote + line items + associations, on the respx fake): dry run
first, per-record results with the APIs' error shapes, a second push writes nothing, a
re-issue updates the same CRM quote and deletes the lines it dropped. Both databases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from flows.cli.main import app
from flows.quotes.push import push
from flows.workspace import Company, Workspace
from kizuna.errors import ConfigError, KizunaError
from tests.support.fakes.fake_hubspot import FakeHubSpot
from tests.support.fakes.fake_salesforce import FakeSalesforce
from warehouse import records as r
from warehouse.db import write_transaction
from warehouse.quotes import documents
from warehouse.state import StreamKey
from warehouse.write.store import apply_page

OPP = "006000000000000042"
SELLER = {
    "name": "株式会社サンプル",
    "address": "",
    "phone": "",
    "registration_number": "T7000012050002",
}
T0 = datetime(2026, 12, 1, tzinfo=UTC)
SF_WRITES = ("PATCH composite", "POST composite", "DELETE composite")
HS_WRITES = ("/batch/upsert", "/batch/update", "/batch/archive")


def _ws(tmp_path: Path) -> Workspace:
    return Workspace(
        company=Company(name="株式会社サンプル"),
        path=tmp_path / "kizuna.yaml",
        sources={
            "sfdc": {"type": "salesforce", "auth": {"client_id": "x", "refresh_token_env": "RT"}},
            "hub": {"type": "hubspot", "token_env": "HS_TOKEN"},
            "kt": {"type": "kintone", "base_url": "https://x.cybozu.com", "apps": {}},
        },
    )


def _lines(source: str, deal: str, *rows: tuple[str, str | None, str, int, str]) -> list[Any]:
    return [
        r.DealLineItem(source_id=f"{source}-{i}", deal_source_id=deal, position=i,
                       product_code=code, description=text, quantity=Decimal(qty),
                       unit_price=Decimal(price), tax_rate=10)
        for i, (_, code, text, qty, price) in enumerate(rows)
    ]  # fmt: skip


LINES = (
    ("a", "SV-01", "導入支援", 2, "150000"),
    ("b", "LIC-1", "ライセンス", 10, "9800"),
    ("c", None, "お値引き", 1, "-8000"),
)


def _deal(engine: Engine, connector: str, deal_id: str, stream: str) -> str:
    with write_transaction(engine) as conn:
        apply_page(conn, StreamKey(connector, stream), records=[
            r.Deal(source_id=deal_id, name=f"基幹刷新 {connector}",
                   organization=r.OrgRef(name="株式会社みなと"), amount=Decimal(440000))
        ])  # fmt: skip
        apply_page(conn, StreamKey(connector, "lines"), records=_lines(connector, deal_id, *LINES))
    doc = documents.issue(engine, f"基幹刷新 {connector}", documents.Settings(seller=SELLER),
                          date(2026, 12, 3))  # fmt: skip
    return str(doc["number"])


def _org(fake: FakeSalesforce) -> None:
    o = fake.org
    o.external_ids.update({"Quote": "Kizuna_Key__c", "QuoteLineItem": "Kizuna_Key__c"})
    o.add("Opportunity", {"Id": OPP, "Name": "基幹刷新", "Pricebook2Id": None}, T0)
    o.add("Pricebook2", {"Id": "01s000000000000001", "Name": "標準価格表", "IsStandard": True}, T0)
    for code in ("SV-01", "LIC-1"):
        o.add("PricebookEntry", {"Pricebook2Id": "01s000000000000001", "ProductCode": code,
                                 "IsActive": True, "UnitPrice": 1}, T0)  # fmt: skip


def _live(fake: FakeSalesforce, obj: str) -> list[dict[str, Any]]:
    return [x for x in fake.org.records.get(obj, []) if not x.get("IsDeleted")]


def test_salesforce_quote_dry_run_push_noop_and_reissue(engine: Engine, tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    number = _deal(engine, "sfdc", OPP, "opportunity")
    with FakeSalesforce() as fake:
        _org(fake)
        client = fake.client()

        dry = push(ws, number, "sfdc", dry_run=True, client=client, engine=engine)
        assert [x.counts()["would_create"] for x in dry] == [1, 2]
        assert not [q for q in fake.org.requests if q.startswith(SF_WRITES)]
        (unpriced,) = dry[1].failed  # the discount line has no product in the price book
        assert unpriced.key == f"{number}:3" and "PricebookEntry" in str(unpriced.error)

        done = push(ws, number, "sfdc", client=client, engine=engine)
        assert [x.counts()["create"] for x in done] == [1, 2]
        (quote,) = _live(fake, "Quote")
        assert quote["Kizuna_Key__c"] == number and quote["OpportunityId"] == OPP
        assert quote["Pricebook2Id"] == "01s000000000000001"
        assert Decimal(str(quote["Tax"])) == Decimal(39000)  # (300,000 + 98,000 − 8,000) × 10%
        assert "10%対象 ¥390,000 消費税 ¥39,000" in quote["Description"]
        items = sorted(_live(fake, "QuoteLineItem"), key=lambda x: x["Kizuna_Key__c"])
        assert [(x["Kizuna_Key__c"], x["Quantity"], x["UnitPrice"]) for x in items] == [
            (f"{number}:1", 2, 150000),
            (f"{number}:2", 10, 9800),
        ]
        assert {x["QuoteId"] for x in items} == {quote["Id"]}

        fake.org.requests.clear()
        again = push(ws, number, "sfdc", client=client, engine=engine)
        assert not [q for q in fake.org.requests if q.startswith(SF_WRITES)]
        assert [x.unchanged for x in again] == [1, 2]

        # Re-issued without the license line: the same Quote is updated, its line deleted.
        with write_transaction(engine) as conn:
            apply_page(conn, StreamKey("sfdc", "lines"), deleted=["sfdc-1"])
        documents.reissue(engine, number, documents.Settings(seller=SELLER), date(2026, 12, 4))
        second = push(ws, number, "sfdc", client=client, engine=engine)
        # Line 1 is unchanged; line 2 is now the discount (no price-book entry): the license
        # line Salesforce had under that key is deleted, the discount reported as failed.
        assert second[0].counts()["update"] == 1 and second[1].unchanged == 1
        assert second[1].counts()["delete"] == 1 and len(second[1].failed) == 1
        (quote,) = _live(fake, "Quote")
        assert "第2版" in quote["Name"] and Decimal(str(quote["Tax"])) == Decimal(29200)
        assert [x["Description"] for x in _live(fake, "QuoteLineItem")] == ["導入支援"]


def test_salesforce_per_record_errors(engine: Engine, tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    number = _deal(engine, "sfdc", OPP, "opportunity")
    with FakeSalesforce() as fake:
        _org(fake)
        client = fake.client()
        fake.org.invalid[number] = ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "有効期限が長すぎます")
        head, lines = push(ws, number, "sfdc", client=client, engine=engine)
        assert head.failed[0].error == "FIELD_CUSTOM_VALIDATION_EXCEPTION 有効期限が長すぎます"
        assert not _live(fake, "QuoteLineItem") and len(lines.failed) == 3
        del fake.org.invalid[number]
        fake.org.fail_ids = {f"{number}:2"}  # UNABLE_TO_LOCK_ROW once: retried, then written
        head, lines = push(ws, number, "sfdc", client=client, engine=engine)
        assert not head.failed and lines.counts()["create"] == 2 and lines.attempts == 2


def test_hubspot_quote_line_items_and_associations(engine: Engine, tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    fake = FakeHubSpot(unique={"contacts": "email", "quotes": "kizuna_key",
                               "line_items": "kizuna_key"})  # fmt: skip
    deal = fake.add("deals", {"dealname": "基幹刷新"})["id"]
    number = _deal(engine, "hub", deal, "deals")

    dry = push(ws, number, "hub", dry_run=True, client=fake.client(), engine=engine)
    assert [x.counts()["would_create"] for x in dry] == [1, 3]
    assert not [c for c in fake.calls if c.endswith(HS_WRITES) or c.startswith("PUT")]

    fake.fail_keys = {f"{number}:3"}  # a 207 multi-status VALIDATION_ERROR for one line
    head, lines, assoc = push(ws, number, "hub", client=fake.client(), engine=engine)
    assert head.counts()["create"] == 1 and lines.counts()["create"] == 2
    (bad,) = lines.failed
    assert bad.key == f"{number}:3" and bad.error.startswith("VALIDATION_ERROR")
    (quote,) = fake.objects["quotes"].values()
    props = quote["properties"]
    assert props["kizuna_key"] == number and props["hs_status"] == "DRAFT"
    assert props["hs_expiration_date"] == "2027-01-02" and "消費税 ¥39,000" in props["hs_comments"]
    assert sorted(fake.assoc[("quotes", quote["id"], "deals")]) == [deal]
    assert len(fake.assoc[("quotes", quote["id"], "line_items")]) == 2
    assert assoc.counts()["create"] == 3

    head, lines, assoc = push(ws, number, "hub", client=fake.client(), engine=engine)
    assert lines.counts()["create"] == 1 and assoc.counts()["create"] == 1  # the failed line
    fake.calls.clear()
    head, lines, assoc = push(ws, number, "hub", client=fake.client(), engine=engine)
    assert not [c for c in fake.calls if c.endswith(HS_WRITES) or c.startswith("PUT")]
    assert (head.unchanged, lines.unchanged, assoc.unchanged) == (1, 3, 4)


def test_refusals_say_what_to_do(engine: Engine, tmp_path: Path) -> None:
    ws = _ws(tmp_path)
    number = _deal(engine, "sfdc", OPP, "opportunity")
    with pytest.raises(ConfigError, match="no quote object"):
        push(ws, number, "kt", engine=engine)
    with pytest.raises(KizunaError, match="was not read from 'hub'"):
        push(ws, number, "hub", engine=engine, client=object())
    with pytest.raises(KizunaError, match="no quote numbered"):
        push(ws, "Q-1999-0001", "sfdc", engine=engine)


def test_cli_reports_per_record_failures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "kizuna.yaml"
    f.write_text("company: {name: 自社}\nsources:\n  kt: {type: kintone, base_url: "
                 "'https://x.cybozu.com', apps: {}}\n", encoding="utf-8")  # fmt: skip
    out = CliRunner().invoke(app, ["quote", "push", "Q-1", "--to", "kt", "-w", str(f)])
    assert out.exit_code != 0 and "no quote object" in out.output and "Traceback" not in out.output


def test_a_rounded_line_goes_as_one_times_its_amount() -> None:
    """The CRM multiplies quantity × price itself; a line the document rounded (2.5 h ×
    ¥12,345 = ¥30,862.5 → ¥30,862) goes as 1 × ¥30,862 so the CRM's total is the document's."""
    from connectors.crm.quote_write import QuoteLine

    D = Decimal
    rounded = QuoteLine("k", "配線工事", "SV-02", D("2.5"), D(12345), D(30862))
    assert rounded.as_sent() == (D(1), D(30862), "配線工事 (2.5 × 12,345)")
    exact = QuoteLine("k", "導入支援", "SV-01", D(2), D(150000), D(300000))
    assert exact.as_sent() == (D(2), D(150000), "導入支援")
