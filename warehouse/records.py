"""The unified model as pydantic records: what every mapping produces and the warehouse accepts.

Each record names the source row it came from (``source_id``) and carries the hash of that
row's payload, so the warehouse can keep lineage and skip rows that did not change. Records
refer to each other by natural keys (email, domain, organization name, source ids), never by
warehouse ids: mappings stay pure and the warehouse resolves keys inside one transaction.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from warehouse.identity.normalize import normalize_domain, normalize_email

ActivityKind = Literal["email", "meeting", "call", "task", "note"]
Direction = Literal["inbound", "outbound", "internal"]
DealStatus = Literal["open", "won", "lost"]
ConsentStatus = Literal["opted_in", "unknown", "opted_out"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    source_id: str = Field(min_length=1)
    payload_hash: str = ""


def _emails(values: list[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        n = normalize_email(v)
        if n is None:
            raise ValueError(f"not an email address: {v!r}")
        if n not in out:
            out.append(n)
    return out


class OrgRef(BaseModel):
    """How a record points at a company: by domain when it has one, else by name."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    name: str | None = None
    domain: str | None = None
    corporate_number: str | None = None

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str | None) -> str | None:
        return normalize_domain(v) if v else None


class Organization(_Record):
    name: str = Field(min_length=1)
    domain: str | None = None
    corporate_number: str | None = Field(default=None, pattern=r"^\d{13}$")
    industry: str | None = None
    size: str | None = None
    address: str | None = None
    phone: str | None = None
    owner_email: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("domain")
    @classmethod
    def _domain(cls, v: str | None) -> str | None:
        return normalize_domain(v) if v else None


class Person(_Record):
    family_name: str | None = None
    given_name: str | None = None
    family_name_kana: str | None = None
    given_name_kana: str | None = None
    full_name: str | None = None
    emails: list[str] = Field(default_factory=list)
    phones: list[str] = Field(default_factory=list)
    title: str | None = None
    department: str | None = None
    gender: str | None = None
    birth_date: date | None = None
    organization: OrgRef | None = None
    owner_email: str | None = None
    lifecycle_stage: str | None = None
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
    name: str = Field(min_length=1)
    organization: OrgRef | None = None
    contact_email: str | None = None
    stage: str | None = None
    amount: Decimal | None = None
    currency: str = "JPY"
    probability: float | None = Field(default=None, ge=0, le=100)
    expected_close: date | None = None
    status: DealStatus = "open"
    owner_email: str | None = None
    changed_at: datetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class Participant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    email: str
    name: str | None = None
    role: Literal["from", "to", "cc", "bcc", "organizer", "attendee"]
    response: str | None = None
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

    key: str = Field(min_length=1)
    kind: ActivityKind
    occurred_at: datetime
    ends_at: datetime | None = None
    direction: Direction | None = None
    subject: str | None = None
    snippet: str | None = None
    thread_key: str | None = None
    location: str | None = None
    status: Literal["confirmed", "tentative", "cancelled"] = "confirmed"
    revision: int = 0
    participants: list[Participant] = Field(default_factory=list)
    deal_source_id: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("occurred_at", "ends_at")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("timestamp has no time zone; mappings must attach one")
        return v


class Order(_Record):
    """A purchase fact for RFM segments."""

    person_email: str | None = None
    organization: OrgRef | None = None
    amount: Decimal
    currency: str = "JPY"
    ordered_at: datetime


Record = Organization | Person | Deal | Activity | Order
