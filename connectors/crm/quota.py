"""How much of a CRM's API quota is left, as each API reports it, for ``kizuna check``.

Each probe is one cheap authenticated read, so it also proves the credentials and the
permission to read what a sync reads:

- Salesforce: ``GET /limits`` (``DailyApiRequests``: ``Max`` and ``Remaining`` for the org's
  rolling 24 hours; ``DailyBulkV2QueryJobs`` when the org reports it).
- HubSpot: ``GET /crm/v3/objects/<object>?limit=1`` per object; the answer's
  ``X-HubSpot-RateLimit-Daily``/``-Daily-Remaining`` headers (private-app tokens only; OAuth
  tokens get none) and ``X-HubSpot-RateLimit-Max``/``-Remaining`` for the current window.
- kintone: ``GET /k/v1/records.json`` for one record per app; kintone reports no daily usage,
  only its concurrent-request limit (``X-ConcurrencyLimit-Limit``/``-Running``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError

from connectors.crm import hubspot as hs_api
from connectors.crm import kintone as kt_api
from connectors.crm.http import request
from connectors.crm.hubspot import HubSpot
from connectors.crm.kintone import AppSpec, Kintone
from connectors.crm.salesforce_errors import translate
from connectors.throttle import RetryPolicy
from kizuna.errors import AuthError, KizunaError

CHECK_POLICY = RetryPolicy(max_retries=1, base=0.5, cap=2.0, max_wait=5.0)
"""A check answers within seconds: one retry, never a long Retry-After sleep."""


@dataclass(frozen=True)
class Quota:
    what: str
    limit: int | None
    remaining: int | None
    per: str = "day"

    def text(self) -> str:
        if self.limit is None or self.remaining is None:
            return f"{self.what}: not reported"
        used = self.limit - self.remaining
        share = f" ({used / self.limit:.0%} used)" if self.limit else ""
        return f"{self.what}: {self.remaining:,} of {self.limit:,} left per {self.per}{share}"


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


# -- Salesforce ------------------------------------------------------------------------------

SALESFORCE_LIMITS = {
    "DailyApiRequests": "API requests",
    "DailyBulkV2QueryJobs": "Bulk API 2.0 query jobs",
}


def salesforce(sf: Salesforce) -> list[Quota]:
    """The org's daily API requests (and Bulk 2.0 query jobs) from ``/limits``."""
    try:
        body = sf.limits()
    except SalesforceError as exc:
        raise translate(exc) from None
    out = []
    for key, what in SALESFORCE_LIMITS.items():
        entry = body.get(key) if isinstance(body, Mapping) else None
        if isinstance(entry, Mapping):
            out.append(Quota(what, _int(entry.get("Max")), _int(entry.get("Remaining"))))
    if not out:
        out.append(Quota("API requests", None, None))
    return out


# -- HubSpot ---------------------------------------------------------------------------------


def hubspot_headers(headers: httpx.Headers) -> list[Quota]:
    out = []
    daily = _int(headers.get("X-HubSpot-RateLimit-Daily"))
    if daily is not None:
        out.append(
            Quota("API requests", daily, _int(headers.get("X-HubSpot-RateLimit-Daily-Remaining")))
        )
    window = _int(headers.get("X-HubSpot-RateLimit-Max"))
    interval = _int(headers.get("X-HubSpot-RateLimit-Interval-Milliseconds"))
    if window is not None:
        per = f"{interval / 1000:g} s" if interval else "window"
        out.append(
            Quota("burst", window, _int(headers.get("X-HubSpot-RateLimit-Remaining")), per=per)
        )
    return out


def hubspot(hs: HubSpot, objects: Iterable[str]) -> tuple[list[str], list[Quota]]:
    """Each object readable (one record asked for); the quota the last answer reported."""
    readable: list[str] = []
    quotas: list[Quota] = []
    for obj in objects:
        resp = request(
            hs.client,
            "GET",
            f"/crm/v3/objects/{obj}",
            what=f"hubspot {obj}",
            policy=CHECK_POLICY,
            explain=_hubspot_explain,
            params={"limit": 1, "archived": "false"},
        )
        readable.append(obj)
        quotas = hubspot_headers(resp.headers) or quotas
    return readable, quotas


def _hubspot_explain(resp: httpx.Response, what: str) -> KizunaError | None:
    if resp.status_code == 403:
        return AuthError(f"{what}: the token may not read it. Fix: add the object's read scope")
    return hs_api.explain(resp, what)


# -- kintone ---------------------------------------------------------------------------------


def kintone(kt: Kintone, spec: AppSpec) -> Quota:
    """One record of the app (token and permission proved); the concurrency kintone reports."""
    resp = request(
        kt.client,
        "GET",
        spec.path("records.json"),
        what=f"kintone app {spec.app}",
        policy=CHECK_POLICY,
        explain=kt_api.explain,
        params={"app": spec.app, "query": "limit 1", "fields[0]": "$id"},
    )
    limit = _int(resp.headers.get("X-ConcurrencyLimit-Limit"))
    running = _int(resp.headers.get("X-ConcurrencyLimit-Running"))
    free = None if limit is None or running is None else limit - running
    return Quota("concurrent requests", limit, free, per="moment")
