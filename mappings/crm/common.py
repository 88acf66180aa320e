"""What the three CRM mappings share: field maps, value parsing and the options they take.

A field map is ``{target: source field}`` from the workspace file. ``target`` is a unified
field (``corporate_number``, ``family_name_kana``, ``stage`` …) or ``attributes.<name>`` for
anything the unified model has no column for; ``source`` is the CRM's field name or code
(``CorporateNumber__c``, ``hs_lead_status``, ``会社名``). Mapped values win over the defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from kizuna.errors import BadRecord
from warehouse.identity.keys.normalize import normalize_phone
from warehouse.quotes.tax import parse_rate

FieldMap = Mapping[str, str]
Getter = Callable[[Mapping[str, Any], str], Any]


@dataclass(frozen=True)
class MapOptions:
    """Per-source mapping settings, built by the flow from the workspace file."""

    source: str
    """The configured source name: prefixes activity keys so two CRMs never collide."""
    field_maps: Mapping[str, FieldMap] = field(default_factory=dict)
    """Per object / app: target → source field."""
    currency: str = "JPY"
    time_zone: str = "Asia/Tokyo"
    phone_region: str = "JP"
    internal_domains: tuple[str, ...] = ()

    def fmap(self, obj: str) -> FieldMap:
        return self.field_maps.get(obj, {})

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


def plain_get(raw: Mapping[str, Any], key: str) -> Any:
    return raw.get(key)


def mapped(raw: Mapping[str, Any], fmap: FieldMap, get: Getter = plain_get) -> dict[str, Any]:
    """Unified fields named by the map (``attributes.x`` excluded), present values only."""
    out: dict[str, Any] = {}
    for target, source in fmap.items():
        if target.startswith("attributes."):
            continue
        v = get(raw, source)
        if v not in (None, ""):
            out[target] = v
    return out


def attributes(raw: Mapping[str, Any], fmap: FieldMap, get: Getter = plain_get) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for target, source in fmap.items():
        if target.startswith("attributes."):
            v = get(raw, source)
            if v not in (None, ""):
                out[target.removeprefix("attributes.")] = _jsonable(v)
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v


def text(v: Any) -> str | None:
    if v is None:
        return None
    s = str(v).strip()
    return s or None


def required_id(v: Any, missing: str) -> str:
    """A record's own id as text; without one it cannot be tracked, so it is quarantined."""
    sid = text(v)
    if not sid:
        raise BadRecord(missing)
    return sid


def decimal(v: Any, what: str, sid: str) -> Decimal | None:
    if v in (None, ""):
        return None
    try:
        d = Decimal(str(v).replace(",", ""))
    except InvalidOperation:
        raise BadRecord(f"{what}: not a number: {v!r}", source_id=sid) from None
    if not d.is_finite():
        raise BadRecord(f"{what}: not a number: {v!r}", source_id=sid)
    return d


def tax_rate(v: Any, sid: str) -> int | None:
    """A product's or line's tax rate cell as a percent; one the rules cannot read refuses
    the record (a wrong rate would misstate 消費税 on every quote that uses it)."""
    if v in (None, ""):
        return None
    try:
        return parse_rate(str(v))
    except ValueError as exc:
        raise BadRecord(str(exc), source_id=sid) from None


def as_float(v: Any, what: str, sid: str) -> float | None:
    d = decimal(v, what, sid)
    return None if d is None else float(d)


def as_bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    return str(v).strip().lower() in ("true", "1", "yes")


def as_date(v: Any, what: str, sid: str) -> date | None:
    if v in (None, ""):
        return None
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    s = str(v).strip()
    try:
        if s.isdigit() and len(s) >= 12:  # epoch milliseconds (HubSpot)
            return datetime.fromtimestamp(int(s) / 1000, UTC).date()
        return date.fromisoformat(s[:10])
    except ValueError:
        raise BadRecord(f"{what}: not a date: {v!r}", source_id=sid) from None


def as_datetime(v: Any, what: str, sid: str, tz: ZoneInfo | None = None) -> datetime | None:
    """ISO 8601 (``Z``, ``+0000`` or ``+00:00``), epoch ms, or a bare date at local midnight."""
    if v in (None, ""):
        return None
    if isinstance(v, datetime):
        return v if v.tzinfo else v.replace(tzinfo=tz or UTC)
    s = str(v).strip()
    try:
        if s.isdigit() and len(s) >= 12:
            return datetime.fromtimestamp(int(s) / 1000, UTC)
        if len(s) == 10:
            return datetime.combine(date.fromisoformat(s), time(), tzinfo=tz or UTC)
        s = s.replace("Z", "+00:00")
        if len(s) > 5 and s[-5] in "+-" and s[-3] != ":":
            s = f"{s[:-2]}:{s[-2:]}"
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise BadRecord(f"{what}: not a date-time: {v!r}", source_id=sid) from None
    return dt if dt.tzinfo else dt.replace(tzinfo=tz or UTC)


def phones(values: list[Any], region: str) -> list[str]:
    out: list[str] = []
    for v in values:
        if v in (None, ""):
            continue
        n = normalize_phone(str(v), region)
        if n and n not in out:
            out.append(n)
    return out


def emails(values: list[Any]) -> list[str]:
    """Addresses worth keeping; CRMs hold junk ('-', 'なし'), which must not sink the record."""
    from warehouse.identity.keys.normalize import normalize_email

    out: list[str] = []
    for v in values:
        if v in (None, ""):
            continue
        n = normalize_email(str(v))
        if n and n not in out:
            out.append(n)
    return out


def email_or_none(v: Any) -> str | None:
    got = emails([v])
    return got[0] if got else None


def is_internal(email: str, opts: MapOptions) -> bool:
    return email.rsplit("@", 1)[-1] in opts.internal_domains
