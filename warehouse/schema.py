"""Tables of the unified store (SQLAlchemy 2 typed declarative).

Rows are written with Core bulk statements (see ``store``), never one ORM object per row;
the mapped classes exist for typing, migrations and readable queries.
Timestamps are stored in UTC. Ids are integers (fast rowid on SQLite, identity on PostgreSQL).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Id = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC on every database, read back time-zone aware.

    SQLite has no time-zone type: without this, 09:00+09:00 would be stored as 09:00 and
    read back as if it were UTC. Naive values are taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC) if dialect.name != "sqlite" else value
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json = JSON()


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Team(Base):
    __tablename__ = "team"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)


class StaffUser(Base):
    """A member of the company's own staff: owns customers, deals and reminders."""

    __tablename__ = "staff_user"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id"))
    visibility: Mapped[str] = mapped_column(String(10), default="own")  # own | team | all
    time_zone: Mapped[str] = mapped_column(String(64), default="Asia/Tokyo")


class Organization(Base):
    """One company as one source record described it (records stay records: the resolver
    links them into clusters; 法人番号 and domain are evidence, not unique keys)."""

    __tablename__ = "organization"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    record_key: Mapped[str | None] = mapped_column(String(16), unique=True)
    """``O-`` + a digest of (connector, stream, source id): the id that survives rebuilds."""
    name: Mapped[str] = mapped_column(String(300))
    name_normalized: Mapped[str] = mapped_column(String(300), index=True)
    domain: Mapped[str | None] = mapped_column(String(253), index=True)
    corporate_number: Mapped[str | None] = mapped_column(String(13), index=True)
    industry: Mapped[str | None] = mapped_column(String(200))
    size: Mapped[str | None] = mapped_column(String(50))
    address: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(32))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    attributes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Person(Base):
    """One contact as one source record (a row, a message participant) described it."""

    __tablename__ = "person"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    record_key: Mapped[str | None] = mapped_column(String(16), unique=True)
    """``P-`` + a digest of (connector, stream, source id): the id that survives rebuilds."""
    family_name: Mapped[str | None] = mapped_column(String(200))
    given_name: Mapped[str | None] = mapped_column(String(200))
    family_name_kana: Mapped[str | None] = mapped_column(String(200))
    given_name_kana: Mapped[str | None] = mapped_column(String(200))
    full_name: Mapped[str | None] = mapped_column(String(400))
    primary_email: Mapped[str | None] = mapped_column(String(320))
    title: Mapped[str | None] = mapped_column(String(200))
    department: Mapped[str | None] = mapped_column(String(200))
    gender: Mapped[str | None] = mapped_column(String(20))
    birth_date: Mapped[date | None] = mapped_column(Date)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    lifecycle_stage: Mapped[str | None] = mapped_column(String(50))
    attributes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PersonEmail(Base):
    """Every normalised address a person record gives; several records may share one (a team
    mailbox, the same person in two exports): only the resolver decides who is who."""

    __tablename__ = "person_email"
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True, index=True)


class PersonPhone(Base):
    __tablename__ = "person_phone"
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), primary_key=True)
    phone: Mapped[str] = mapped_column(String(32), primary_key=True, index=True)


class Deal(Base):
    __tablename__ = "deal"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(400))
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    stage: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3), default="JPY")
    probability: Mapped[float | None]
    expected_close: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10), default="open")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"))
    attributes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DealStageHistory(Base):
    """Every stage a deal entered, so time-in-stage and velocity can be computed."""

    __tablename__ = "deal_stage_history"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deal.id"), index=True)
    stage: Mapped[str | None] = mapped_column(String(100))
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Activity(Base):
    __tablename__ = "activity"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key: Mapped[str] = mapped_column(String(500), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    direction: Mapped[str | None] = mapped_column(String(10))
    subject: Mapped[str | None] = mapped_column(Text)
    snippet: Mapped[str | None] = mapped_column(Text)
    thread_key: Mapped[str | None] = mapped_column(String(500), index=True)
    location: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default="confirmed")
    revision: Mapped[int] = mapped_column(Integer, default=0)
    deal_id: Mapped[int | None] = mapped_column(ForeignKey("deal.id"), index=True)
    attributes: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    timeline: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    """False for what is not contact with a customer (bounces, auto-replies): kept, searchable,
    but never counted by segments, reminders or the 日報."""
    body: Mapped[str | None] = mapped_column(Text)
    """The whole plain text (HTML converted), up to the source's cap; the snippet comes from it."""


class ActivityParticipant(Base):
    __tablename__ = "activity_participant"
    activity_id: Mapped[int] = mapped_column(ForeignKey("activity.id"), primary_key=True)
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    role: Mapped[str] = mapped_column(String(10), primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    staff_user_id: Mapped[int | None] = mapped_column(ForeignKey("staff_user.id"), index=True)
    name: Mapped[str | None] = mapped_column(String(400))
    response: Mapped[str | None] = mapped_column(String(20))


class Order(Base):
    __tablename__ = "purchase_order"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    organization_id: Mapped[int | None] = mapped_column(ForeignKey("organization.id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3), default="JPY")
    ordered_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SourceRecord(Base):
    """Lineage: which connector row produced (or contributed to) which unified row.

    ``payload_hash`` lets a re-sync skip rows that did not change without touching them.
    """

    __tablename__ = "source_record"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    connector: Mapped[str] = mapped_column(String(100))
    stream: Mapped[str] = mapped_column(String(100))
    source_id: Mapped[str] = mapped_column(String(500))
    entity: Mapped[str] = mapped_column(String(20))
    entity_id: Mapped[int | None] = mapped_column(Id)
    payload_hash: Mapped[str] = mapped_column(String(32))
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locator: Mapped[str | None] = mapped_column(String(600))
    """Where the row is in its source: ``file.csv:12`` (1-based data row) or a message file."""
    __table_args__ = (
        UniqueConstraint(
            "connector", "stream", "source_id", "entity", "entity_id", name="uq_source_record_key"
        ),
        Index("ix_source_record_entity", "entity", "entity_id"),
    )


class SyncState(Base):
    """One cursor per connector stream, written in the same transaction as its rows."""

    __tablename__ = "sync_state"
    connector: Mapped[str] = mapped_column(String(100), primary_key=True)
    stream: Mapped[str] = mapped_column(String(100), primary_key=True)
    cursor: Mapped[dict[str, Any] | None] = mapped_column(Json)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_run_id: Mapped[str | None] = mapped_column(String(64))
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    """The mapping and options the stored rows were made with; a new one re-reads the stream."""


class SyncRun(Base):
    """What one run did, per stream: the record a run leaves behind."""

    __tablename__ = "sync_run"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    connector: Mapped[str] = mapped_column(String(100))
    stream: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), default="running")
    read: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Source rows (messages, events, records) read; one row may write several records."""
    inserted: Mapped[int] = mapped_column(Integer, default=0)
    updated: Mapped[int] = mapped_column(Integer, default=0)
    unchanged: Mapped[int] = mapped_column(Integer, default=0)
    deleted: Mapped[int] = mapped_column(Integer, default=0)
    quarantined: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)


class Quarantine(Base):
    """A record that could not be used, kept whole with the reason, so nothing is lost."""

    __tablename__ = "quarantine"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    connector: Mapped[str] = mapped_column(String(100))
    stream: Mapped[str] = mapped_column(String(100))
    source_id: Mapped[str | None] = mapped_column(String(500))
    reason: Mapped[str] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    row_key: Mapped[str | None] = mapped_column(String(32))
    """Digest of the record's id and content: the same bad record read again is one entry."""
    path: Mapped[str | None] = mapped_column(String(1000))
    """The file (and row or offset) a person opens to fix it."""
    __table_args__ = (
        Index("ix_quarantine_stream", "connector", "stream"),
        Index("uq_quarantine_row_key", "connector", "stream", "row_key", unique=True),
    )


class Consent(Base):
    """Evidence of each consent change (特定電子メール法): never updated, only appended."""

    __tablename__ = "consent"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(200))
    evidence: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Suppression(Base):
    """Addresses never to be sent to (bounce, complaint, unsubscribe); wins over consent."""

    __tablename__ = "suppression"
    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    reason: Mapped[str] = mapped_column(String(50))
    source: Mapped[str | None] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)


def table(model: type[Base]) -> Table:
    """The Core table of a mapped class, typed as a Table for the bulk helpers."""
    return cast(Table, model.__table__)
