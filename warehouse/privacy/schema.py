"""Tables of privacy requests: the workspace's salt, the requests themselves, erased records.

Nothing here holds an erased value: the salt is random, a request names the customer by its
public id (``P-…``) with counts, and an erased source record is an HMAC of its source key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema import Base, Id, Json, UTCDateTime


class PrivacySalt(Base):
    """The one salt of this warehouse (row ``id = 1``), made by the first erasure."""

    __tablename__ = "privacy_salt"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    salt: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PrivacyRequest(Base):
    """One disclosure or erasure: who asked, when, for which customer, and what it touched."""

    __tablename__ = "privacy_request"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # disclose | erase
    customer_id: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    summary: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    """Counts per table and file kind; never a name, an address or a phone number."""


class ErasedRecord(Base):
    """A source record of an erased customer, as an HMAC of (connector, stream, source id):
    a later sync that reads it again holds it (quarantine without content) instead of
    landing the person anew."""

    __tablename__ = "erased_record"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("privacy_request.id"))
