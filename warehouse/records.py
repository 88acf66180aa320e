"""The unified model as pydantic records: what every mapping produces and the warehouse accepts.

Each record names the source row it came from (``source_id``) and carries the hash of that
row's payload, so the warehouse can keep lineage and skip rows that did not change. Records
refer to each other by natural keys (email, domain, organization name, source ids), never by
warehouse ids: mappings stay pure and the warehouse resolves keys inside one transaction.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from warehouse.identity.keys.normalize import normalize_domain, normalize_email

ActivityKind = Literal[
    "email", "bounce", "auto_reply", "invitation", "forward", "meeting", "call", "task", "note"
]
MAIL_KINDS = ("email", "forward", "invitation")
"""Kinds that are mail a person wrote (bounces and auto-replies are mail nobody wrote)."""
CONTACT_KINDS = (*MAIL_KINDS, "meeting", "call")
"""Kinds that count as contact with a customer, when also on the timeline."""
Direction = Literal["inbound", "outbound", "internal"]
DealStatus = Literal["open", "won", "lost"]
ConsentStatus = Literal["opted_in", "unknown", "opted_out"]


def safe_text(value: str) -> str:
    """Text every database stores: lone surrogates (undecodable bytes kept by a parser)
    become ``\\udcXX`` escapes and NUL becomes U+FFFD (PostgreSQL refuses both)."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _all_safe(data: dict[str, Any]) -> bool:
    """Whether no string in ``data`` needs ``safe_text``, checked in one C pass.

    orjson refuses lone surrogates and spells NUL ``\\u0000``, so a clean dict (nearly
    every record) costs one serialisation instead of a Python call per string; anything
    orjson cannot write (non-string keys, huge integers) answers False and takes the walk.
    Values that are not JSON (dates, Decimals, nested records) are not walked by ``_safe``
    either, so they serialise as null here.
    """
    try:
        blob = orjson.dumps(data, default=_none)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return b"\\u0000" not in blob


def _none(_value: Any) -> None:
    return None


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {_safe(k): _safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_safe(v) for v in value)
    return value


class _Safe(BaseModel):
    """Every string of a record is valid Unicode before any column sees it."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        if not isinstance(data, dict) or _all_safe(data):
            return data
        return _safe(data)


# Column widths of ``warehouse.schema``: a longer value is a bad record (quarantined with the
# field named) on SQLite and PostgreSQL alike, never a failed INSERT that stops the stream.
Str20 = Annotated[str, Field(max_length=20)]
Str32 = Annotated[str, Field(max_length=32)]
Str50 = Annotated[str, Field(max_length=50)]
Str100 = Annotated[str, Field(max_length=100)]
Str200 = Annotated[str, Field(max_length=200)]
Str253 = Annotated[str, Field(max_length=253)]
Str300 = Annotated[str, Field(max_length=300)]
Str400 = Annotated[str, Field(max_length=400)]
Str500 = Annotated[str, Field(max_length=500)]
Email = Annotated[str, Field(max_length=320)]


class _Record(_Safe):
    source_id: str = Field(min_length=1, max_length=500)
    payload_hash: str = ""
    locator: str | None = None
    """Where the source row sits (``file.csv:12``, a message file), for the crosswalk."""


def _emails(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        n = normalize_email(v)
        if n is None:
            raise ValueError(f"not an email address: {v!r}")
        if n not in out:
            out.append(n)
    return out


class OrgRef(_Safe):
    """How a record points at a company: by domain when it has one, else by name."""

    name: Str300 | None = None
    domain: Str253 | None = None
    corporate_number: str | None = None

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str | None) -> str | None:
        return normalize_domain(v) if v else None


class Organization(_Record):
    name: str = Field(min_length=1, max_length=300)
    domain: Str253 | None = None
    corporate_number: str | None = Field(default=None, pattern=r"^\d{13}$")
    industry: Str200 | None = None
    size: Str50 | None = None
    address: str | None = None
    phone: Str32 | None = None
    owner_email: Email | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str | None) -> str | None:
        return normalize_domain(v) if v else None


class Person(_Record):
    family_name: Str200 | None = None
    given_name: Str200 | None = None
    family_name_kana: Str200 | None = None
    given_name_kana: Str200 | None = None
    full_name: Str400 | None = None
    emails: list[Email] = Field(default_factory=list)
    phones: list[Str32] = Field(default_factory=list)
    title: Str200 | None = None
    department: Str200 | None = None
    gender: Str20 | None = None
    birth_date: date | None = None
    organization: OrgRef | None = None
    owner_email: Email | None = None
    lifecycle_stage: Str50 | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("emails")
    @classmethod
    def _norm_emails(cls, v: list[str]) -> list[str]:
        return _emails(v)

    def display_name(self) -> str | None:
        if self.full_name:
            return self.full_name
        parts = [p for p in (self.family_name, self.given_name) if p]
        return " ".join(parts) or None


class Deal(_Record):
    name: str = Field(min_length=1, max_length=400)
    organization: OrgRef | None = None
    contact_email: Email | None = None
    stage: Str100 | None = None
    amount: Decimal | None = None
    currency: str = Field(default="JPY", max_length=3)
    probability: float | None = Field(default=None, ge=0, le=100)
    expected_close: date | None = None
    status: DealStatus = "open"
    owner_email: str | None = None
    changed_at: datetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class Participant(_Safe):
    email: Email
    name: Str400 | None = None
    role: Literal["from", "to", "cc", "bcc", "organizer", "attendee"]
    response: Str20 | None = None
    internal: bool = False
    """True for the company's own staff (own domains): they become staff users, not people."""

    @field_validator("email")
    @classmethod
    def _email(cls, v: str) -> str:
        n = normalize_email(v)
        if n is None:
            raise ValueError(f"not an email address: {v!r}")
        return n


class Activity(_Record):
    """A mail, meeting, call, task or note.

    ``key`` is the cross-source identity: the same mail seen through two mailboxes (or Gmail
    and IMAP) has one key (its Message-ID) and becomes one activity.
    """

    key: str = Field(min_length=1, max_length=500)
    kind: ActivityKind
    occurred_at: datetime
    ends_at: datetime | None = None
    direction: Direction | None = None
    subject: str | None = None
    snippet: str | None = None
    thread_key: Str500 | None = None
    location: str | None = None
    status: Literal["confirmed", "tentative", "cancelled"] = "confirmed"
    revision: int = 0
    participants: list[Participant] = Field(default_factory=list)
    deal_source_id: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    timeline: bool = True
    """False for mail that is no contact with a customer (bounces, auto-replies)."""
    body: str | None = None
    """The whole plain text, capped by the source's ``max_text_chars``."""

    @field_validator("occurred_at", "ends_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("timestamp has no time zone; mappings must attach one")
        return v


class Order(_Record):
    """A purchase fact for RFM segments."""

    person_email: Email | None = None
    organization: OrgRef | None = None
    amount: Decimal
    currency: str = Field(default="JPY", max_length=3)
    ordered_at: datetime


class Product(_Record):
    """A catalog entry (商品) and, when the row has one, its price in one price list."""

    code: str = Field(min_length=1)
    name: str = Field(min_length=1)
    unit: str | None = None
    tax_rate: int = Field(default=10, ge=0, le=10)
    unit_price: Decimal | None = None
    price_list: str = "standard"
    currency: str = "JPY"
    tax_included: bool = False
    """The price is 税込 (the price list quotes tax-included prices)."""


class DealLineItem(_Record):
    """One line of a deal (商談明細); ``deal_source_id`` is the deal's id in its source."""

    deal_source_id: str = Field(min_length=1)
    position: int = 0
    product_code: str | None = None
    description: str | None = None
    quantity: Decimal = Decimal(1)
    unit_price: Decimal | None = None
    tax_rate: int | None = Field(default=None, ge=0, le=10)
    unit: str | None = None
    tax_included: bool | None = None
    """Whether ``unit_price`` is 税込; None when the line has no price of its own."""


class CellIssue(_Record):
    """One cell of a source row that could not be used (``7.00001E+12`` as a 法人番号, a
    phone that is no number): the cell is dropped, the row lands, and the issue is kept in
    quarantine against the row so the admin sees which cell of which row to fix."""

    column: str
    value: str
    reason: str


Record = Organization | Person | Deal | Activity | Order | Product | DealLineItem | CellIssue
