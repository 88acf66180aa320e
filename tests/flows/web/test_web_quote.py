"""A deal's 見積書 from the customer page: the button issues the quote within the viewer's deal
scope and the browser receives the PDF; another rep's deal is refused; a deal without lines
comes back to the page with the error. Both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, insert, select
from starlette.testclient import TestClient

from flows.web.app import from_workspace
from tests.flows.cli.support import workspace
from tests.flows.web.conftest import World, csrf_of, sign_in
from warehouse import records as r
from warehouse import schema as t
from warehouse.access.schema import AuditLog
from warehouse.db import write_transaction
from warehouse.quotes import schema as q
from warehouse.state import StreamKey, now
from warehouse.write.store import apply_page

QUOTES = {"seller": {"name": "株式会社サンプル", "registration_number": "T7000012050002"}}


def _lines_for(world: World, who: str) -> None:
    """The deal as a CRM row (lineage) with two lines, as a sync would leave it."""
    with write_transaction(world.engine) as conn:
        conn.execute(
            insert(t.table(t.SourceRecord)).values(
                connector="crm", stream="deals", source_id=f"deal-{who}", entity="deal",
                entity_id=world.deal[who], payload_hash="h", first_seen=now(), last_seen=now(),
            )
        )  # fmt: skip
        apply_page(conn, StreamKey("crm", "lines"), records=[
            r.DealLineItem(source_id=f"{who}-1", deal_source_id=f"deal-{who}",
                           description="導入支援", quantity=2, unit_price=150000, tax_rate=10),
            r.DealLineItem(source_id=f"{who}-2", deal_source_id=f"deal-{who}",
                           description="弁当", quantity=10, unit_price=1000, tax_rate=8),
        ])  # fmt: skip


def test_the_deal_button_issues_a_quote_and_returns_the_pdf(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lines_for(world, "a1")
    app = from_workspace(workspace(tmp_path, world.engine, monkeypatch, quotes=QUOTES))
    rep = TestClient(app, follow_redirects=False)
    sign_in(rep, "a1")
    page = rep.get(f"/customers/{world.customer['a1']}")
    action = f"/customers/{world.customer['a1']}/deals/{world.deal['a1']}/quote"
    assert page.status_code == 200 and f'action="{action}"' in page.text
    token = csrf_of(page.text)

    got = rep.post(action, data={"csrf": token})
    assert got.status_code == 200 and got.headers["content-type"] == "application/pdf"
    assert got.content.startswith(b"%PDF") and "-r1.pdf" in got.headers["content-disposition"]
    assert (tmp_path / "quotes").is_dir() and len(list((tmp_path / "quotes").glob("*.pdf"))) == 1
    with world.engine.connect() as conn:
        (total,) = conn.execute(select(q.Quote.total)).one()
        assert int(total) == 300000 + 30000 + 10000 + 800
        audit = conn.execute(select(AuditLog.detail).where(AuditLog.action == "quote-create"))
        assert list(audit.scalars()) == ["quote Q-2026-0001 r1"]

    # Without the token: refused before anything is issued.
    assert rep.post(action, data={"csrf": "forged"}).status_code == 403
    # Another rep's deal is outside a1's scope: not found, nothing issued.
    other = f"/customers/{world.customer['a1']}/deals/{world.deal['b1']}/quote"
    bad = rep.post(other, data={"csrf": token})
    assert bad.status_code == 303 and "no%20deal" in bad.headers["location"]
    with world.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(q.Quote)).scalar_one() == 1


def test_a_deal_without_lines_comes_back_with_the_reason(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = from_workspace(workspace(tmp_path, world.engine, monkeypatch, quotes=QUOTES))
    rep = TestClient(app, follow_redirects=False)
    sign_in(rep, "a1")
    token = csrf_of(rep.get(f"/customers/{world.customer['a1']}").text)
    back = rep.post(
        f"/customers/{world.customer['a1']}/deals/{world.deal['a1']}/quote", data={"csrf": token}
    )
    assert back.status_code == 303 and "no%20line%20items" in back.headers["location"]
    shown = rep.get(back.headers["location"]).text
    assert "has no line items" in shown
