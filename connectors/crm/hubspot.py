"""HubSpot CRM v3 read side over an injected ``httpx.Client`` (base URL and token set on it).

Incremental reads use the search endpoint filtered ``<modified> GTE hw`` and sorted ascending,
where ``<modified>`` is ``lastmodifieddate`` for contacts and ``hs_lastmodifieddate`` for the
rest. Search answers at most 10,000 results per query (400 past it) and pages by offset, so
instead of paging one long query the mark moves after every page and the search starts
again: each page begins at the last record's modification time (a closed boundary; the
records already emitted at exactly that time are remembered in the cursor and dropped). Only when a whole
page shares one timestamp does ``paging.next.after`` page within that tie. A record modified
mid-run therefore moves to the end of the order instead of shifting an offset under us.

Search never returns archived records; ``GET /crm/v3/objects/{type}?archived=true`` lists
them and they become tombstones. Owners (``/crm/v3/owners``), deal pipelines and associations
(v4 batch read, then a batch read of the associated objects' key properties) are attached to
each raw record under ``_``-prefixed keys so mappings stay pure.

429s carry ``policyName``: ``SECONDLY``/``TEN_SECONDLY_ROLLING`` are waits (``Retry-After`` or
the ``X-HubSpot-RateLimit-Interval-Milliseconds`` window), ``DAILY`` is a spent quota.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from connectors.crm.http import request
from connectors.page import Cursor, Page
from connectors.throttle import Budget, Paced, RetryPolicy, RollingWindow, parse_retry_after
from kizuna.errors import AuthError, FatalError, KizunaError, QuotaError, TransientError

log = logging.getLogger(__name__)
T = TypeVar("T")

SEARCH_LIMIT = 200
SEARCH_WINDOW = 10_000
BATCH = 100

ENGAGEMENTS = ("meetings", "calls", "emails", "notes", "tasks")

DEFAULT_PROPERTIES: dict[str, list[str]] = {
    "companies": [
        "name", "domain", "industry", "numberofemployees", "phone", "zip", "state", "city",
        "address", "hubspot_owner_id",
    ],
    "contacts": [
        "email", "firstname", "lastname", "phone", "mobilephone", "jobtitle", "company",
        "lifecyclestage", "hubspot_owner_id",
    ],
    "deals": [
        "dealname", "amount", "dealstage", "pipeline", "closedate", "deal_currency_code",
        "hubspot_owner_id",
    ],
    "meetings": [
        "hs_timestamp", "hs_meeting_title", "hs_meeting_body", "hs_meeting_start_time",
        "hs_meeting_end_time", "hs_meeting_location", "hubspot_owner_id",
    ],
    "calls": ["hs_timestamp", "hs_call_title", "hs_call_body", "hs_call_direction", "hubspot_owner_id"],
    "emails": ["hs_timestamp", "hs_email_subject", "hs_email_text", "hs_email_direction", "hubspot_owner_id"],
    "notes": ["hs_timestamp", "hs_note_body", "hubspot_owner_id"],
    "tasks": ["hs_timestamp", "hs_task_subject", "hs_task_body", "hs_task_status", "hubspot_owner_id"],
    "products": ["name", "hs_sku", "price", "description"],
    "line_items": [
        "name", "hs_sku", "hs_product_id", "quantity", "price", "hs_discount_percentage",
        "discount", "hs_position_on_quote", "description",
    ],
}  # fmt: skip

ASSOCIATIONS: dict[str, dict[str, list[str]]] = {
    # object → associated type → its properties worth attaching
    "contacts": {"companies": ["name", "domain"]},
    "deals": {"companies": ["name", "domain"], "contacts": ["email"]},
    "line_items": {"deals": []},
    **{e: {"contacts": ["email", "firstname", "lastname"], "deals": []} for e in ENGAGEMENTS},
}


def modified_property(obj: str) -> str:
    return "lastmodifieddate" if obj == "contacts" else "hs_lastmodifieddate"


class HubSpotCursor(Cursor):
    """``hw``: epoch ms of the last record read; ``at_hw``: ids already emitted at exactly
    that time (the closed boundary reads them again; they are not emitted twice);
    ``after``: paging inside a tie at hw."""

    hw: int | None = None
    at_hw: tuple[str, ...] = ()
    after: str | None = None


def explain(resp: httpx.Response, what: str) -> KizunaError | None:
    """HubSpot's own error body → Kizuna error (429 policies, expired tokens)."""
    try:
        body = resp.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    msg = str(body.get("message") or "")[:300]
    if resp.status_code == 429:
        policy = str(body.get("policyName") or "")
        if policy == "DAILY":
            return QuotaError(f"{what}: HubSpot daily API limit reached; resume tomorrow")
        wait = parse_retry_after(resp.headers.get("Retry-After"))
        if wait is None:
            interval = resp.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds")
            wait = int(interval) / 1000 if interval and interval.isdigit() else 1.0
        return TransientError(f"{what}: throttled ({policy or 'rate limit'})", retry_after=wait)
    if resp.status_code == 401:
        return AuthError(f"{what}: HubSpot refused the access token; renew the private app token")
    if resp.status_code == 400 and "10000" in msg.replace(",", ""):
        return FatalError(f"{what}: search window of {SEARCH_WINDOW} results exceeded: {msg}")
    return None


def to_ms(value: Any) -> int | None:
    """HubSpot datetimes arrive as ISO strings (search) or epoch-ms strings (some properties)."""
    if value in (None, ""):
        return None
    s = str(value)
    if s.isdigit():
        return int(s)
    dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


SEARCHES_PER_SECOND = 5
"""HubSpot's search endpoints: five requests per second per account."""
REQUESTS_PER_10S = 100
"""Private apps on Free and Starter; Professional and Enterprise allow 190 (configurable)."""

_paces: dict[str, tuple[RollingWindow, RollingWindow]] = {}
_paces_lock = threading.Lock()


def account_pace(
    account: str, searches_per_second: float, requests_per_10s: int
) -> tuple[RollingWindow, RollingWindow]:
    """The one (search, every call) pair of rolling windows of an account in this process,
    so the streams of one account share its limits instead of each spending them."""
    key = f"{account}|{searches_per_second}|{requests_per_10s}"
    with _paces_lock:
        pace = _paces.get(key)
        if pace is None:
            per_s = max(1, int(searches_per_second))
            window = per_s / searches_per_second  # 4.5/s → 4 per 0.89 s
            pace = _paces[key] = (
                RollingWindow(per_s, window),
                RollingWindow(requests_per_10s, 10.0),
            )
        return pace


class HubSpot:
    """The calls one stream makes; holds the client, retry policy and the account's pace.

    ``budget`` paces every call (the account's ten-second limit); searches also take
    ``search_budget`` (the per-second search limit). Both count rolling windows, as HubSpot
    does, so a steady sync runs at the limits without 429s.
    """

    def __init__(
        self,
        client: httpx.Client,
        policy: RetryPolicy | None = None,
        search_budget: Budget | None = None,
        budget: Budget | None = None,
    ) -> None:
        self.client = client
        self.policy = policy or RetryPolicy()
        self.search_budget = search_budget
        self.budget = budget

    def call(self, method: str, url: str, what: str, **kw: Any) -> Any:
        budget = self.budget
        if url.endswith("/search") and self.search_budget is not None:
            budget = Paced(self.search_budget, budget) if budget else self.search_budget
        resp = request(
            self.client,
            method,
            url,
            what=what,
            policy=self.policy,
            explain=explain,
            budget=budget,
            **kw,
        )
        return resp.json() if resp.content else {}

    # -- reference data ----------------------------------------------------------------------
    def owners(self) -> dict[str, str]:
        """Owner id → email (staff users are matched by email)."""
        out: dict[str, str] = {}
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"after": after} if after else {})}
            body = self.call("GET", "/crm/v3/owners", "hubspot owners", params=params)
            for o in body.get("results", []):
                if o.get("email"):
                    out[str(o["id"])] = str(o["email"])
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return out

    def deal_stages(self) -> dict[str, dict[str, Any]]:
        """Stage id → label, pipeline and closed/won flags from every deal pipeline."""
        body = self.call("GET", "/crm/v3/pipelines/deals", "hubspot pipelines")
        out: dict[str, dict[str, Any]] = {}
        for p in body.get("results", []):
            for s in p.get("stages", []):
                meta = s.get("metadata") or {}
                closed = str(meta.get("isClosed", "false")).lower() == "true"
                prob = meta.get("probability")
                out[str(s["id"])] = {
                    "label": s.get("label"),
                    "pipeline": p.get("label"),
                    "closed": closed,
                    "won": closed and prob is not None and float(prob) >= 1.0,
                    "probability": float(prob) * 100 if prob not in (None, "") else None,
                }
        return out

    def associated(
        self, obj: str, ids: Sequence[str], to: str, properties: Sequence[str]
    ) -> dict[str, list[dict[str, Any]]]:
        """id → associated records (``{"id", **properties}``) via the v4 associations API."""
        links: dict[str, list[str]] = {}
        for i in range(0, len(ids), BATCH):
            body = self.call(
                "POST",
                f"/crm/v4/associations/{obj}/{to}/batch/read",
                f"hubspot {obj}→{to} associations",
                json={"inputs": [{"id": x} for x in ids[i : i + BATCH]]},
            )
            for res in body.get("results", []):
                links[str(res["from"]["id"])] = [str(t["toObjectId"]) for t in res.get("to", [])]
        targets = sorted({t for ts in links.values() for t in ts})
        props: dict[str, dict[str, Any]] = {t: {} for t in targets}
        if properties:
            for i in range(0, len(targets), BATCH):
                body = self.call(
                    "POST",
                    f"/crm/v3/objects/{to}/batch/read",
                    f"hubspot {to} batch read",
                    json={
                        "properties": list(properties),
                        "inputs": [{"id": x} for x in targets[i : i + BATCH]],
                    },
                )
                for res in body.get("results", []):
                    props[str(res["id"])] = {
                        k: v for k, v in (res.get("properties") or {}).items() if k in properties
                    }
        return {k: [{"id": t, **props.get(t, {})} for t in v] for k, v in links.items()}

    # -- records -----------------------------------------------------------------------------
    def search_page(
        self, obj: str, properties: Sequence[str], hw: int | None, after: str | None, limit: int
    ) -> dict[str, Any]:
        mod = modified_property(obj)
        body: dict[str, Any] = {
            "sorts": [{"propertyName": mod, "direction": "ASCENDING"}],
            "properties": list(dict.fromkeys([*properties, mod])),
            "limit": limit,
        }
        if hw is not None:
            body["filterGroups"] = [
                {"filters": [{"propertyName": mod, "operator": "GTE", "value": str(hw)}]}
            ]
        if after:
            body["after"] = after
        result: dict[str, Any] = self.call(
            "POST", f"/crm/v3/objects/{obj}/search", f"hubspot {obj} search", json=body
        )
        return result

    def archived_ids(self, obj: str) -> Iterator[list[str]]:
        after: str | None = None
        while True:
            params: dict[str, Any] = {"archived": "true", "limit": 100}
            if after:
                params["after"] = after
            body = self.call(
                "GET", f"/crm/v3/objects/{obj}", f"hubspot {obj} archived", params=params
            )
            yield [str(r["id"]) for r in body.get("results", [])]
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return


def enrich(
    hs: HubSpot,
    obj: str,
    records: list[dict[str, Any]],
    owners: Mapping[str, str],
    stages: Mapping[str, Mapping[str, Any]],
) -> None:
    ids = [str(r["id"]) for r in records]
    for to, props in ASSOCIATIONS.get(obj, {}).items():
        got = hs.associated(obj, ids, to, props)
        for r in records:
            r[f"_{to}"] = got.get(str(r["id"]), [])
    for r in records:
        p = r.get("properties") or {}
        owner = owners.get(str(p.get("hubspot_owner_id") or ""))
        if owner:
            r["_owner_email"] = owner
        if obj == "deals" and p.get("dealstage") in stages:
            r["_stage"] = dict(stages[p["dealstage"]])


def _optional(fetch: Callable[[], T], what: str, obj: str, default: T) -> T:
    """Reference data a token may lack the scope for: records still sync, less enriched."""
    try:
        return fetch()
    except AuthError as exc:
        log.warning("hubspot %s: cannot read %s (%s); syncing without them", obj, what, exc)
        return default


def read_objects(
    hs: HubSpot,
    obj: str,
    cursor: HubSpotCursor | None,
    *,
    properties: Sequence[str] = (),
    archived: bool = True,
    limit: int = SEARCH_LIMIT,
) -> Iterator[Page[HubSpotCursor]]:
    """Pages of one object type modified since the cursor, then archived ids as tombstones."""
    full = cursor is None
    cur = cursor or HubSpotCursor()
    props = list(properties) or DEFAULT_PROPERTIES.get(obj, [])
    mod = modified_property(obj)
    owners: dict[str, str] = _optional(hs.owners, "owners", obj, {})
    stages: dict[str, dict[str, Any]] = (
        _optional(hs.deal_stages, "pipelines", obj, {}) if obj == "deals" else {}
    )
    while True:
        body = hs.search_page(obj, props, cur.hw, cur.after, limit)
        fetched: list[dict[str, Any]] = list(body.get("results", []))
        nxt = ((body.get("paging") or {}).get("next") or {}).get("after")

        def stamp(r: dict[str, Any]) -> int | None:
            return to_ms((r.get("properties") or {}).get(mod))

        done = set(cur.at_hw)
        results = [r for r in fetched if not (str(r["id"]) in done and stamp(r) == cur.hw)]
        if results:
            enrich(hs, obj, results, owners, stages)
        last = stamp(fetched[-1]) if fetched else None
        if last is not None and (cur.hw is None or last > cur.hw):
            at = tuple(str(r["id"]) for r in fetched if stamp(r) == last)
            new = HubSpotCursor(hw=last, at_hw=at)
        else:
            # Nothing newer than the mark on this page: page inside the tie.
            at = (*cur.at_hw, *(str(r["id"]) for r in results if stamp(r) == cur.hw))
            new = HubSpotCursor(hw=cur.hw, at_hw=at, after=str(nxt) if nxt else None)
            if nxt and int(nxt) >= SEARCH_WINDOW:
                raise FatalError(
                    f"hubspot {obj}: more than {SEARCH_WINDOW} records share one modification "
                    "time; the search API cannot page past them"
                )
        if not nxt:
            cur = new.model_copy(update={"after": None})
            yield Page(records=results, cursor=cur, snapshot_end=full and not archived)
            break
        cur = new
        yield Page(records=results, cursor=cur)
    if archived:
        pending: list[str] | None = None
        for ids in hs.archived_ids(obj):
            if pending is not None:
                yield Page(records=[], cursor=cur, deleted=pending)
            pending = ids
        yield Page(records=[], cursor=cur, deleted=pending or [], snapshot_end=full)
