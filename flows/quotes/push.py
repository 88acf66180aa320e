"""``kizuna quote push``: an issued quote written to the CRM its deal came from.

The latest revision of the number is sent (``connectors.crm.quote_write``): to Salesforce as a
Quote with QuoteLineItems, to HubSpot as a quote with line items associated to the deal. The
deal must have been read from that CRM source (its id there is in the lineage); kintone has no
quote object, so a kintone source is refused with what to do instead. ``dry_run`` reads the CRM
and reports what would change; a second push of the same revision writes nothing.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from connectors.crm import quote_write as qw
from connectors.crm.write import WriteResult
from flows.sources import registry
from flows.workspace import Workspace
from kizuna.errors import ConfigError
from warehouse.db import open_warehouse
from warehouse.quotes import documents
from warehouse.quotes.tax import yen

CRMS = ("salesforce", "hubspot")


def line_key(number: str, i: int) -> str:
    return f"{number}:{i}"


def payload(docs: list[dict[str, Any]], deal_crm_id: str) -> qw.QuotePayload:
    """The latest revision as the CRM gets it; earlier revisions' extra lines to delete."""
    doc = docs[-1]
    number = str(doc["number"])
    inclusive = bool(doc.get("tax_included"))
    parts = []
    for rt in doc["by_rate"]:
        label = (
            "非課税"
            if rt["rate"] == 0
            else f"{rt['rate']}%対象" + ("(軽減)" if rt["reduced"] else "")
        )
        if inclusive:
            parts.append(f"{label} {yen(Decimal(rt['gross']))} 内消費税 {yen(Decimal(rt['tax']))}")
        else:
            parts.append(f"{label} {yen(Decimal(rt['base']))} 消費税 {yen(Decimal(rt['tax']))}")
    lines = tuple(
        qw.QuoteLine(
            key=line_key(number, i),
            description=str(ln["description"]),
            product_code=ln.get("product_code"),
            quantity=Decimal(ln["quantity"]),
            unit_price=Decimal(ln["unit_price"]),
            amount=Decimal(ln["amount"]),
        )
        for i, ln in enumerate(doc["lines"], 1)
    )
    most = max(len(d["lines"]) for d in docs)
    rev = f" (第{doc['revision']}版)" if doc["revision"] > 1 else ""
    return qw.QuotePayload(
        key=number,
        title=f"御見積書 {number}{rev} {doc['subject']}",
        deal_id=deal_crm_id,
        expires=str(doc["valid_until"]),
        lines=lines,
        tax=Decimal(doc["tax"]),
        tax_included=inclusive,
        breakdown=" / ".join(parts) + f" / 合計 {yen(Decimal(doc['total']))}",
        remarks=str(doc.get("remarks") or ""),
        terms=str(doc.get("payment_terms") or ""),
        # Lines are keyed by position: every earlier key is in scope, so a key this revision
        # does not send (gone, or now a line Salesforce cannot price) is deleted there.
        earlier_line_keys=tuple(line_key(number, i) for i in range(1, most + 1)),
    )


def push(
    ws: Workspace,
    number: str,
    source: str,
    *,
    dry_run: bool = False,
    client: Any = None,
    engine: Engine | None = None,
) -> list[WriteResult]:
    """Write quote ``number`` to CRM source ``source``; ``client`` is injected by tests."""
    cfg = registry.source_config(ws, source)
    kind = str(getattr(cfg, "type", ""))
    if kind not in CRMS:
        raise ConfigError(
            f"source {source!r} ({kind}) has no quote object to push to",
            file=str(ws.path),
            field=f"sources.{source}",
            fix="push to a salesforce or hubspot source; for kintone, attach the PDF by hand",
        )
    eng = engine or open_warehouse(ws.warehouse_url)
    with eng.connect() as conn:
        docs = documents.revisions(conn, number)
        if not docs:
            raise documents.QuoteError(f"no quote numbered {number!r}; see `kizuna quote list`")
        deal = documents.deal_source_id(conn, int(docs[-1]["deal_id"]), source)
    if deal is None:
        raise documents.QuoteError(
            f"quote {number}'s deal {docs[-1]['deal_id']} was not read from {source!r}; a quote "
            f"goes back to the CRM its deal came from (sync the deal from {source!r} first)"
        )
    q = payload(docs, deal)
    module = registry.module_of(cfg)
    if kind == "salesforce":
        return qw.salesforce(client or module.login(source, cfg, ws), q, dry_run=dry_run)
    return qw.hubspot(module._api(source, cfg, ws, client), q, dry_run=dry_run)
