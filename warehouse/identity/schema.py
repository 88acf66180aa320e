"""Tables of the identity graph: clusters, members, aliases, match evidence, pins, blocking.

The unit the resolver links is a unified row (a ``person`` or ``organization`` the store wrote
at sync time). A cluster is named by its smallest member id, so a from-scratch rerun gives the
same ids and a new record (always a larger id) never renames a cluster. Only clusters with
more than one member get rows here: a row without a member row is its own cluster, which keeps
the graph as small as the duplicates rather than as large as the store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema import Base, Id, Json, Organization, Person, UTCDateTime


class IdentityCluster(Base):
    """A resolved customer (or company) with more than one member and its golden record."""

    __tablename__ = "identity_cluster"
    entity: Mapped[str] = mapped_column(String(20), primary_key=True)
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    golden: Mapped[dict[str, Any] | None] = mapped_column(Json)
    """field → {"value", "source", "record_id", "rule"}: each golden field names its origin."""
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class IdentityMember(Base):
    """Which cluster a unified row belongs to (absent: the row is its own cluster)."""

    __tablename__ = "identity_member"
    entity: Mapped[str] = mapped_column(String(20), primary_key=True)
    record_id: Mapped[int] = mapped_column(Id, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(Id)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime())
    __table_args__ = (Index("ix_identity_member_cluster", "entity", "cluster_id"),)


class IdentityAlias(Base):
    """A cluster id that was merged into another: it keeps resolving, and tells the history."""

    __tablename__ = "identity_alias"
    entity: Mapped[str] = mapped_column(String(20), primary_key=True)
    alias_id: Mapped[int] = mapped_column(Id, primary_key=True)
    cluster_id: Mapped[int] = mapped_column(Id)
    match_id: Mapped[int | None] = mapped_column(Id)
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime())
    __table_args__ = (Index("ix_identity_alias_cluster", "entity", "cluster_id"),)


class IdentityMatch(Base):
    """Evidence for one pair: why two rows are (or may be) the same.

    ``decision`` is ``merge`` (rule or score above the merge threshold), ``review`` (between
    the thresholds: waits in the review queue), ``accepted`` / ``rejected`` (a person decided;
    later runs keep that decision).
    """

    __tablename__ = "identity_match"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    entity: Mapped[str] = mapped_column(String(20))
    a_id: Mapped[int] = mapped_column(Id)
    b_id: Mapped[int] = mapped_column(Id)
    method: Mapped[str] = mapped_column(String(40))
    score: Mapped[float] = mapped_column(Float)
    fields: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    decision: Mapped[str] = mapped_column(String(10))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    __table_args__ = (
        Index("uq_identity_match_pair", "entity", "a_id", "b_id", unique=True),
        Index("ix_identity_match_decision", "entity", "decision"),
        Index("ix_identity_match_b", "entity", "b_id"),
    )


class IdentityPin(Base):
    """Two rows an admin said are never the same (a never-link, a split, a rejected review)."""

    __tablename__ = "identity_pin"
    entity: Mapped[str] = mapped_column(String(20), primary_key=True)
    a_id: Mapped[int] = mapped_column(Id, primary_key=True)
    b_id: Mapped[int] = mapped_column(Id, primary_key=True)
    reason: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    __table_args__ = (Index("ix_identity_pin_b", "entity", "b_id"),)


class IdentityKey(Base):
    """Rows' blocking keys, kept as 64-bit digests: rows sharing a key are compared.

    Only the incremental path reads it (a changed row's neighbours), by digest, so the keys
    are kept in buckets of that order: a row per bucket (a digest's top bits), its
    (digest, record id) pairs packed in key order, 16 bytes each (``linkage.key_table``).
    Two keys that collide only add a pair to compare, never a link. A row's keys are found
    again from its stored features (see ``blocking.forget``), so no index by record is
    needed.
    """

    __tablename__ = "identity_key"
    entity: Mapped[str] = mapped_column(String(20), primary_key=True)
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    pairs: Mapped[bytes] = mapped_column(LargeBinary)
    __table_args__ = ({"sqlite_with_rowid": False},)


class IdentityKeyDelta(Base):
    """People's keys an incremental run renewed, kept beside ``identity_key`` until a full
    run folds them in: ``n`` +1 a key added (not in ``identity_key``), -1 a key dropped
    (still there), 0 neither any more. The index is ``identity_key`` with these applied.

    A 1 % change of a million people renews 0.2 M keys: written into the 14 M-key table,
    each landed on another of its pages, so the run rewrote (and SQLite checkpointed) most
    of the table; here they fill a few pages in key order."""

    __tablename__ = "identity_key_delta"
    entity: Mapped[str] = mapped_column(String(20), primary_key=True)
    digest: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    record_id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    n: Mapped[int] = mapped_column(SmallInteger)
    __table_args__ = ({"sqlite_with_rowid": False},)


class IdentityFeature(Base):
    """The comparable form of a row (normalised names, readings, contacts) as compact JSON.

    ``fingerprint`` is a 64-bit digest of a person row's ``data`` (``linkage.index``): a
    run finds the rows whose features changed by comparing one integer per row, not a
    million rows' text. None (a company, or a row written before the column) counts as
    changed."""

    __tablename__ = "identity_feature"
    entity: Mapped[str] = mapped_column(String(20), primary_key=True)
    record_id: Mapped[int] = mapped_column(Id, primary_key=True)
    data: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[int | None] = mapped_column(BigInteger)


class IdentityCompanyName(Base):
    """A company name's comparable parts (``company_parts``), by a digest of the name: the
    dictionary reading behind them is the costliest value a run computes, and the same
    names come back in every run."""

    __tablename__ = "identity_company_name"
    digest: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    parts: Mapped[str] = mapped_column(Text)
    __table_args__ = ({"sqlite_with_rowid": False},)


class IdentityState(Base):
    """Up to when each entity was resolved: the incremental path starts from here."""

    __tablename__ = "identity_state"
    entity: Mapped[str] = mapped_column(String(20), primary_key=True)
    watermark: Mapped[datetime | None] = mapped_column(UTCDateTime())
    full_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stats: Mapped[dict[str, Any] | None] = mapped_column(Json)


# Changed rows are found by ``updated_at``; these indexes keep that a range scan.
PERSON_UPDATED = Index("ix_person_updated_at", Person.updated_at)
ORG_UPDATED = Index("ix_organization_updated_at", Organization.updated_at)
