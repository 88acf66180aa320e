"""Salesforce read side: incremental SOQL on ``SystemModstamp``, deletes, Bulk 2.0, quota watch.

A stream is one sObject. Its cursor is a high-water mark on ``SystemModstamp``; the query is
``WHERE SystemModstamp >= :hw ORDER BY SystemModstamp, Id`` — a closed boundary, so rows that
share the mark with the last committed row are read again and absorbed by the engine's
unchanged-hash skip instead of being lost when a page ends inside a tie. ``queryAll`` returns
recycle-bin rows (``IsDeleted = true``), which become tombstones. Rows purged from the recycle
bin are only visible in the delete log (``sobjects/X/deleted/``), kept for 15 days: when our
last look is older than that, or ``earliestDateAvailable`` is later than it, deletes may have
been missed and the stream is resynced from scratch (``ResyncRequired``), whose final page is a
snapshot so vanished rows are retired.

Quota: every REST response carries ``Sforce-Limit-Info`` (``sf.api_usage``). When the org's
daily usage reaches ``quota_share`` the stream stops after a committed page — a warning, not a
failure — and resumes next run. A 403 ``REQUEST_LIMIT_EXCEEDED`` is a ``QuotaError``.

Large objects use Bulk API 2.0 (a ``queryAll`` job; CSV pages chained by ``Sforce-Locator``).
Bulk results are unordered, so the mark only moves on the job's last page; a crash mid-job
re-runs the job and upserts absorb the overlap.

REST records are flattened to the Bulk CSV shape (``Owner.Email`` keys, no ``attributes``) so
both paths hash and map identically.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, Literal

from simple_salesforce.api import Salesforce

from connectors.crm.salesforce_errors import Guard
from connectors.crm.salesforce_values import (
    flatten,
    parse_csv_page,
    parse_sf_datetime,
    soql_datetime,
    soql_in,
)
from connectors.page import Cursor, Page
from connectors.throttle import RetryPolicy
from kizuna.errors import ResyncRequired

log = logging.getLogger(__name__)

API_VERSION = "61.0"
DELETE_LOG_DAYS = 15
ID_CHUNK = 200

# Standard fields read per object; workspace field maps add custom ones (``Foo__c``).
DEFAULT_FIELDS: dict[str, list[str]] = {
    "Account": [
        "Id", "Name", "Website", "Phone", "Industry", "NumberOfEmployees", "BillingPostalCode",
        "BillingState", "BillingCity", "BillingStreet", "Owner.Email", "Owner.Name",
    ],
    "Contact": [
        "Id", "LastName", "FirstName", "Email", "Phone", "MobilePhone", "Title", "Department",
        "Birthdate", "Account.Name", "Account.Website", "Owner.Email",
    ],
    "Lead": [
        "Id", "LastName", "FirstName", "Email", "Phone", "MobilePhone", "Title", "Company",
        "Website", "Status", "LeadSource", "IsConverted", "Owner.Email",
    ],
    "Opportunity": [
        "Id", "Name", "StageName", "Amount", "Probability", "CloseDate", "IsClosed", "IsWon",
        "Account.Name", "Account.Website", "Owner.Email", "LastStageChangeDate", "CreatedDate",
    ],
    "Task": [
        "Id", "Subject", "Description", "ActivityDate", "Status", "TaskSubtype", "CreatedDate",
        "CompletedDateTime", "WhatId", "Who.Email", "Who.Name", "Owner.Email",
    ],
    "Event": [
        "Id", "Subject", "Description", "StartDateTime", "EndDateTime", "Location",
        "IsAllDayEvent", "WhatId", "Who.Email", "Who.Name", "Owner.Email",
    ],
    "PricebookEntry": [
        "Id", "UnitPrice", "IsActive", "Product2Id", "Product2.ProductCode", "Product2.Name",
        "Product2.QuantityUnitOfMeasure", "Pricebook2.Name", "Pricebook2.IsStandard",
    ],
    "OpportunityLineItem": [
        "Id", "OpportunityId", "ProductCode", "Name", "Description", "Quantity", "UnitPrice",
        "Discount", "SortOrder",
    ],
    "User": ["Id", "Email", "Name", "IsActive", "Department"],
    "Campaign": ["Id", "Name", "Status", "Type", "StartDate", "EndDate"],
    "CampaignMember": ["Id", "CampaignId", "ContactId", "LeadId", "Status", "Email"],
}  # fmt: skip


# --------------------------------------------------------------------------------------------
# Reading


def usage_share(sf: Salesforce) -> float | None:
    """Share of the org's daily API requests spent, from the last ``Sforce-Limit-Info``."""
    usage = getattr(sf, "api_usage", {}).get("api-usage")
    if usage is None or not usage.total:
        return None
    return float(usage.used) / float(usage.total)


class SalesforceCursor(Cursor):
    """``hw``: SystemModstamp mark; ``deleted_checked``: delete log read up to here."""

    hw: str | None = None
    deleted_checked: str | None = None
    sweep_pending: bool = False
    """A full pass was cut short (quota, crash): rows that vanished before it are only found
    by listing every live Id once it has caught up."""


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    fields: Sequence[str] = ()
    modstamp: str = "SystemModstamp"
    delete_log: bool = True
    """Ask ``sobjects/X/deleted/`` for purged rows (replicable objects only)."""
    api: Literal["rest", "bulk2", "auto"] = "rest"
    bulk_threshold: int = 50_000
    where: str | None = None
    """An extra SOQL condition an admin configured (e.g. ``RecordType.Name = 'Corp'``)."""
    enrich: Callable[[Salesforce, list[dict[str, Any]]], None] | None = field(
        default=None, compare=False
    )

    def select_fields(self) -> list[str]:
        base = list(self.fields) or list(DEFAULT_FIELDS.get(self.name, ["Id"]))
        out: list[str] = []
        for f in ["Id", *base, self.modstamp, "IsDeleted"]:
            if f not in out:
                out.append(f)
        return out


def build_soql(spec: ObjectSpec, hw: str | None, *, ordered: bool = True) -> str:
    conds = []
    if hw:
        conds.append(f"{spec.modstamp} >= {soql_datetime(parse_sf_datetime(hw))}")
    if spec.where:
        conds.append(f"({spec.where})")
    q = f"SELECT {', '.join(spec.select_fields())} FROM {spec.name}"
    if conds:
        q += " WHERE " + " AND ".join(conds)
    if ordered:
        q += f" ORDER BY {spec.modstamp}, Id"
    return q


Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


def read_object(
    sf: Salesforce,
    spec: ObjectSpec,
    cursor: SalesforceCursor | None,
    *,
    quota_share: float = 0.8,
    bulk_wait: float = 5.0,
    bulk_page: int = 50_000,
    clock: Clock | None = None,
    policy: RetryPolicy | None = None,
) -> Iterator[Page[SalesforceCursor]]:
    """Pages of one sObject changed since the cursor, then tombstones from the delete log."""
    full = cursor is None
    started = (clock or _now)()
    guard = Guard(spec.name, policy or RetryPolicy())
    if full:
        # A full pass learns of deletes from the pass itself; the log takes over from its start.
        cur = SalesforceCursor(
            deleted_checked=soql_datetime(started) if spec.delete_log else None,
            sweep_pending=True,
        )
    else:
        assert cursor is not None
        cur = cursor
        if spec.delete_log and cur.deleted_checked:
            # If the delete log no longer reaches our last look, purged rows can only be
            # learnt by a resync — decided before reading anything else.
            last_look = parse_sf_datetime(cur.deleted_checked)
            if last_look < started - timedelta(days=DELETE_LOG_DAYS):
                raise ResyncRequired(
                    f"salesforce {spec.name}: last delete check is older than "
                    f"{DELETE_LOG_DAYS} days"
                )
    use_bulk = spec.api == "bulk2" or (
        spec.api == "auto" and _count(sf, spec, cur.hw, guard) > spec.bulk_threshold
    )
    reader = _read_bulk if use_bulk else _read_rest
    last: Page[SalesforceCursor] = Page(records=[], cursor=cur)
    for page, is_last in reader(sf, spec, cur, guard, bulk_wait, bulk_page):
        if is_last:
            last = page
            break
        yield page
        if _over_quota(sf, spec, quota_share):
            return
    if full:
        done = last.cursor.model_copy(update={"sweep_pending": False})
        yield Page(records=last.records, cursor=done, deleted=last.deleted, snapshot_end=True)
        return
    tail = last
    if spec.delete_log:
        yield last
        if _over_quota(sf, spec, quota_share):
            return
        tail = _deleted_page(sf, spec, last.cursor, started, guard)
    yield tail
    if tail.cursor.sweep_pending and not _over_quota(sf, spec, quota_share):
        yield from _id_sweep(sf, spec, tail.cursor, guard, quota_share)


def _id_sweep(
    sf: Salesforce, spec: ObjectSpec, cur: SalesforceCursor, guard: Guard, quota_share: float
) -> Iterator[Page[SalesforceCursor]]:
    """Every live Id (``seen``), ending in a snapshot: completes a full pass cut short."""
    q = f"SELECT Id FROM {spec.name}" + (f" WHERE ({spec.where})" if spec.where else "")
    result = guard(lambda: sf.query(q))
    while True:
        ids = [str(r["Id"]) for r in result.get("records", [])]
        if result.get("done", True):
            done = cur.model_copy(update={"sweep_pending": False})
            yield Page(records=[], cursor=done, seen=ids, snapshot_end=True)
            return
        yield Page(records=[], cursor=cur, seen=ids)
        if _over_quota(sf, spec, quota_share):
            return
        url = str(result["nextRecordsUrl"])
        result = guard(partial(sf.query_more, url, identifier_is_url=True))


def _over_quota(sf: Salesforce, spec: ObjectSpec, share: float) -> bool:
    used = usage_share(sf)
    if used is not None and used >= share:
        log.warning(
            "salesforce %s: %.0f%% of the daily API quota used (limit %.0f%%); stopping here, "
            "the next run resumes from the committed cursor",
            spec.name,
            used * 100,
            share * 100,
        )
        return True
    return False


def _count(sf: Salesforce, spec: ObjectSpec, hw: str | None, guard: Guard) -> int:
    q = build_soql(spec, hw, ordered=False).replace(
        f"SELECT {', '.join(spec.select_fields())}", "SELECT COUNT()", 1
    )
    res = guard(lambda: sf.query(q))
    return int(res.get("totalSize", 0))


def _split(spec: ObjectSpec, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    live, gone = [], []
    for row in rows:
        if row.get("IsDeleted") is True:
            gone.append(str(row["Id"]))
        else:
            live.append(row)
    return live, gone


def _read_rest(
    sf: Salesforce,
    spec: ObjectSpec,
    cur: SalesforceCursor,
    guard: Guard,
    _wait: float,
    _page: int,
) -> Iterator[tuple[Page[SalesforceCursor], bool]]:
    soql = build_soql(spec, cur.hw)
    result = guard(lambda: sf.query(soql, include_deleted=True))
    while True:
        rows = [flatten(r) for r in result.get("records", [])]
        live, gone = _split(spec, rows)
        if spec.enrich is not None and live:
            guard(partial(spec.enrich, sf, live))
        hw = str(rows[-1][spec.modstamp]) if rows else cur.hw
        cur = cur.model_copy(update={"hw": hw})
        done = bool(result.get("done", True))
        yield Page(records=live, cursor=cur, deleted=gone), done
        if done:
            return
        url = str(result["nextRecordsUrl"])
        result = guard(partial(sf.query_more, url, identifier_is_url=True))


def _read_bulk(
    sf: Salesforce,
    spec: ObjectSpec,
    cur: SalesforceCursor,
    guard: Guard,
    wait: float,
    page_size: int,
) -> Iterator[tuple[Page[SalesforceCursor], bool]]:
    soql = build_soql(spec, cur.hw, ordered=False)
    job = getattr(sf.bulk2, spec.name)
    best = cur.hw
    best_dt = parse_sf_datetime(best) if best else None
    pages = guard(lambda: job.query_all(soql, max_records=page_size, wait=wait))
    it = iter(pages)
    pending: Page[SalesforceCursor] | None = None
    while True:
        # A generator that raised is finished: retrying ``next`` would end the job silently.
        text = guard(lambda: next(it, None), retry=False)
        if text is None:
            break
        rows = parse_csv_page(text)
        live, gone = _split(spec, rows)
        if spec.enrich is not None and live:
            guard(partial(spec.enrich, sf, live))
        for row in rows:
            stamp = row.get(spec.modstamp)
            if stamp:
                dt = parse_sf_datetime(str(stamp))
                if best_dt is None or dt > best_dt:
                    best, best_dt = str(stamp), dt
        if pending is not None:
            yield pending, False
        # Until the job's last page the mark stays put: the job is unordered.
        pending = Page(records=live, cursor=cur, deleted=gone)
    final = cur.model_copy(update={"hw": best})
    if pending is None:
        yield Page(records=[], cursor=final), True
    else:
        yield Page(records=pending.records, cursor=final, deleted=pending.deleted), True


def _deleted_page(
    sf: Salesforce,
    spec: ObjectSpec,
    cur: SalesforceCursor,
    now: datetime,
    guard: Guard,
) -> Page[SalesforceCursor]:
    if cur.deleted_checked is None:
        return Page(
            records=[], cursor=cur.model_copy(update={"deleted_checked": soql_datetime(now)})
        )
    start = parse_sf_datetime(cur.deleted_checked)
    if start >= now - timedelta(minutes=1):
        return Page(records=[], cursor=cur)  # the API wants a window of at least a minute
    params = {"start": soql_datetime(start), "end": soql_datetime(now)}
    body = guard(lambda: sf.restful(f"sobjects/{spec.name}/deleted/", params=params)) or {}
    earliest = body.get("earliestDateAvailable")
    if earliest and parse_sf_datetime(str(earliest)) > start:
        raise ResyncRequired(
            f"salesforce {spec.name}: delete log starts at {earliest}, after our last look"
        )
    ids = [str(d["id"]) for d in body.get("deletedRecords", [])]
    covered = body.get("latestDateCovered")
    checked = soql_datetime(parse_sf_datetime(str(covered))) if covered else params["end"]
    return Page(records=[], cursor=cur.model_copy(update={"deleted_checked": checked}), deleted=ids)


# --------------------------------------------------------------------------------------------
# Enrichment


def stage_history(sf: Salesforce, opportunities: list[dict[str, Any]]) -> None:
    """Attach ``_stage_history`` (every stage entered, oldest first) from OpportunityHistory."""
    ids = [str(o["Id"]) for o in opportunities]
    hist: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    for part in range(0, len(ids), ID_CHUNK):
        chunk = ids[part : part + ID_CHUNK]
        q = (
            "SELECT OpportunityId, StageName, CreatedDate FROM OpportunityHistory "
            f"WHERE OpportunityId IN ({soql_in(chunk)}) ORDER BY CreatedDate, Id"
        )
        for row in sf.query_all_iter(q):
            steps = hist.setdefault(str(row["OpportunityId"]), [])
            if not steps or steps[-1]["stage"] != row["StageName"]:
                steps.append({"stage": row["StageName"], "at": row["CreatedDate"]})
    for o in opportunities:
        o["_stage_history"] = hist.get(str(o["Id"]), [])
