"""A Kizuna quote pushed to the CRM its deal came from: Salesforce Quote + QuoteLineItem, or a
HubSpot quote + its line items + the associations to the deal and the lines.

Built on the CRM write side (``write.plan``/``run``): every record is keyed by the quote number
(``Q-2026-0001``; a line by ``Q-2026-0001:3``) in an external-id field Kizuna owns
(Salesforce ``Kizuna_Key__c``, HubSpot ``kizuna_key``: unique values), so a retried or repeated
push updates what the first one made, a second push finds everything unchanged and writes
nothing, and ``dry_run`` reports would-create/update/delete without a write. A re-issued quote
updates the same CRM quote; lines an earlier revision had and this one has not are deleted
(``mirror`` within the quote's own line keys). Results are per record.

Salesforce prices a QuoteLineItem only through a PricebookEntry of the Quote's price book
(the Opportunity's, else the standard one), found by product code; a line whose code has no
active entry there is reported as failed with the fix, and the other lines still go. The tax
is the Quote's ``Tax`` (the document's, rounded once per rate); a 内税 document sends its
税込 prices and ``Tax`` 0 (the tax it contains is in the description). HubSpot gets the lines
as the document states them and the per-rate breakdown in ``hs_comments``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError

from connectors.crm import hubspot_write as hw
from connectors.crm import salesforce_write as sw
from connectors.crm import write as w
from connectors.crm.hubspot import HubSpot
from connectors.crm.salesforce_errors import translate
from connectors.crm.salesforce_values import soql_in
from kizuna.errors import TransientError

SF_KEY = "Kizuna_Key__c"
HS_KEY = "kizuna_key"


@dataclass(frozen=True)
class QuoteLine:
    key: str
    description: str
    product_code: str | None
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal
    """The document's line amount (quantity × price rounded to yen)."""

    def as_sent(self) -> tuple[Decimal, Decimal, str]:
        """(quantity, unit price, text) for a CRM that multiplies them itself: when the
        document rounded the product (2.5 h × ¥12,345 = ¥30,862), the line goes as 1 × the
        amount with the quantity and price in its text, so the CRM's total is the document's."""
        if self.quantity * self.unit_price == self.amount:
            return self.quantity, self.unit_price, self.description
        shown = f"{self.description} ({_plain(self.quantity)} × {_plain(self.unit_price)})"
        return Decimal(1), self.amount, shown


@dataclass(frozen=True)
class QuotePayload:
    """The CRM-neutral quote the flow builds from the stored document."""

    key: str
    """The quote number: one CRM quote per number, updated by each revision."""
    title: str
    deal_id: str
    """The deal's id in this CRM (Opportunity Id, HubSpot deal id)."""
    expires: str
    lines: tuple[QuoteLine, ...]
    tax: Decimal
    tax_included: bool
    breakdown: str
    """内訳 per rate (対象額 and 消費税), as printed on the document."""
    remarks: str = ""
    terms: str = ""
    earlier_line_keys: tuple[str, ...] = ()
    """Line keys earlier revisions had: deleted in the CRM when this revision has not."""


def _plain(d: Decimal) -> str:
    return format(d.normalize(), "f") if d != d.to_integral_value() else f"{int(d):,}"


def _num(d: Decimal) -> int | float:
    return int(d) if d == d.to_integral_value() else float(d)


# -- Salesforce --------------------------------------------------------------------------------
def _query(sf: Salesforce, soql: str) -> list[dict[str, Any]]:
    try:
        return list(sf.query_all_iter(soql))
    except SalesforceError as exc:
        raise translate(exc) from None


def _pricebook(sf: Salesforce, opportunity: str) -> str | None:
    opp = _query(
        sf, f"SELECT Id, Pricebook2Id FROM Opportunity WHERE Id = {soql_in([opportunity])}"
    )
    if opp and opp[0].get("Pricebook2Id"):
        return str(opp[0]["Pricebook2Id"])
    std = _query(sf, "SELECT Id FROM Pricebook2 WHERE IsStandard = true")
    return str(std[0]["Id"]) if std else None


def _entries(sf: Salesforce, pricebook: str, codes: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in w.chunked(sorted(set(codes)), sw.COMPOSITE):
        rows = _query(
            sf,
            "SELECT Id, ProductCode FROM PricebookEntry WHERE "
            f"Pricebook2Id = {soql_in([pricebook])} AND IsActive = true "
            f"AND ProductCode IN ({soql_in(part)})",
        )
        for row in rows:
            out[str(row["ProductCode"])] = str(row["Id"])
    return out


def salesforce(sf: Salesforce, q: QuotePayload, *, dry_run: bool = False) -> list[w.WriteResult]:
    """Upsert the Quote, then its lines (mirror within this quote's keys); per-record results."""
    pricebook = _pricebook(sf, q.deal_id)
    fields: dict[str, Any] = {
        "Name": q.title[:255],
        "OpportunityId": q.deal_id,
        "ExpirationDate": q.expires,
        "Tax": 0 if q.tax_included else _num(q.tax),
        "Description": "\n".join(x for x in (q.breakdown, q.terms, q.remarks) if x)[:32000],
    }
    if pricebook:
        fields["Pricebook2Id"] = pricebook
    head = sw.sync(sf, "Quote", SF_KEY, {q.key: fields}, dry_run=dry_run)
    have = sw.current(sf, "Quote", SF_KEY, [q.key], [])
    quote_id = have[q.key].target_id if q.key in have else "(new quote)"
    codes = [ln.product_code for ln in q.lines if ln.product_code]
    entries = _entries(sf, pricebook, codes) if pricebook and codes else {}
    desired: dict[str, dict[str, Any]] = {}
    unpriced: list[w.Outcome] = []
    for ln in q.lines:
        entry = entries.get(ln.product_code or "")
        if entry is None:
            what = f"product code {ln.product_code!r}" if ln.product_code else "no product code"
            unpriced.append(
                w.Outcome(
                    ln.key,
                    "create",
                    False,
                    error=f"{ln.description}: {what} has no active PricebookEntry in price book "
                    f"{pricebook or '(none)'}; add the product there (Salesforce quote lines "
                    "need one)",
                )
            )
            continue
        qty, price, text = ln.as_sent()
        desired[ln.key] = {
            "QuoteId": quote_id,
            "PricebookEntryId": entry,
            "Quantity": _num(qty),
            "UnitPrice": _num(price),
            "Description": text[:255],
        }
    if head.failed:
        lines = w.WriteResult("salesforce QuoteLineItem", dry_run=dry_run)
        lines.outcomes = [
            w.Outcome(k, "create", False, error="not written: the Quote failed") for k in desired
        ]
    else:
        lines = sw.sync(
            sf,
            "QuoteLineItem",
            SF_KEY,
            desired,
            "mirror",
            dry_run=dry_run,
            scope=q.earlier_line_keys,
        )
    lines.outcomes += unpriced
    return [head, lines]


# -- HubSpot -----------------------------------------------------------------------------------
def hubspot(hs: HubSpot, q: QuotePayload, *, dry_run: bool = False) -> list[w.WriteResult]:
    """Upsert the quote and its line items by ``kizuna_key``, then the missing associations."""
    props = {
        "hs_title": q.title[:255],
        "hs_expiration_date": q.expires,
        "hs_status": "DRAFT",
        "hs_currency": "JPY",
        "hs_language": "ja",
        "hs_comments": "\n".join(x for x in (q.breakdown, q.remarks) if x),
        "hs_terms": q.terms,
    }
    head = hw.sync(hs, "quotes", HS_KEY, {q.key: props}, dry_run=dry_run)
    desired = {}
    for i, ln in enumerate(q.lines):
        qty, price, text = ln.as_sent()
        desired[ln.key] = {
            "name": text[:255],
            "quantity": str(_num(qty)),
            "price": str(_num(price)),
            "hs_sku": ln.product_code or "",
            "hs_position_on_quote": str(i),
        }
    lines = hw.sync(
        hs, "line_items", HS_KEY, desired, "mirror", dry_run=dry_run, scope=q.earlier_line_keys
    )
    if dry_run or head.failed:
        return [head, lines]
    return [head, lines, _associate(hs, q, [k for k in desired if k not in _failed(lines)])]


def _failed(res: w.WriteResult) -> set[str]:
    return {o.key for o in res.failed}


def _associated(hs: HubSpot, quote_id: str, to: str) -> set[str]:
    body = hs.call(
        "POST",
        f"/crm/v4/associations/quotes/{to}/batch/read",
        f"hubspot quote {to}",
        json={"inputs": [{"id": quote_id}]},
    )
    return {str(t["toObjectId"]) for res in body.get("results", []) for t in res.get("to") or []}


def _associate(hs: HubSpot, q: QuotePayload, line_keys: Sequence[str]) -> w.WriteResult:
    """Quote → deal and quote → each line, only those missing (a second push makes no call)."""
    result = w.WriteResult("hubspot quote associations")
    quote = hw.current(hs, "quotes", HS_KEY, [q.key], [])[q.key].target_id
    line_ids = {
        k: c.target_id for k, c in hw.current(hs, "line_items", HS_KEY, line_keys, []).items()
    }
    want: list[tuple[str, str, str]] = [(f"deal {q.deal_id}", "deals", q.deal_id)]
    want += [(f"line {k}", "line_items", line_ids[k]) for k in line_keys if k in line_ids]
    have: Mapping[str, set[str]] = {
        to: _associated(hs, quote, to) for to in {to for _, to, _ in want}
    }
    for key, to, target in want:
        if target in have[to]:
            result.unchanged += 1
            continue
        try:
            hs.call(
                "PUT",
                f"/crm/v4/objects/quotes/{quote}/associations/default/{to}/{target}",
                f"hubspot quote association to {to}",
            )
            result.outcomes.append(w.Outcome(key, "create", True, target))
        except TransientError as exc:
            result.outcomes.append(w.Outcome(key, "create", False, target, str(exc), True))
    return result
