"""Tables of the quotes wing: the catalog (products, price lists), deal line items, number
counters and quotes. A quote row is a frozen document: re-issuing adds a revision."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema import Base, Id, Json, UTCDateTime


class Product(Base):
    """A thing sold, named by its code (品番/商品コード) across every source."""

    __tablename__ = "product"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(400))
    unit: Mapped[str | None] = mapped_column(String(20))
    tax_rate: Mapped[int] = mapped_column(Integer, default=10)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PriceListEntry(Base):
    """A product's unit price (税抜) in one price list (標準価格, 代理店価格 …)."""

    __tablename__ = "price_list_entry"
    price_list: Mapped[str] = mapped_column(String(100), primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("product.id"), primary_key=True)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(18, 2))
    currency: Mapped[str] = mapped_column(String(3), default="JPY")
    tax_included: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The price is 税込; quotes back-compute 税抜 per rate (``quotes.tax``)."""
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DealLineItem(Base):
    """One line of a deal (商談明細). ``deal_ref`` is the deal's source id; the deal is found
    through lineage when read, so the lines and the deals may arrive in either order."""

    __tablename__ = "deal_line_item"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    deal_ref: Mapped[str] = mapped_column(String(500), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    product_code: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(400))
    quantity: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    unit_price: Mapped[Decimal | None] = mapped_column(Numeric(18, 2))
    tax_rate: Mapped[int | None] = mapped_column(Integer)
    unit: Mapped[str | None] = mapped_column(String(20))
    tax_included: Mapped[bool | None] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class QuoteCounter(Base):
    """The next sequence number of one series period (``Q-2026-`` …), bumped atomically."""

    __tablename__ = "quote_counter"
    series: Mapped[str] = mapped_column(String(200), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Quote(Base):
    """One issued revision of a quote; the document's content is frozen in ``document``."""

    __tablename__ = "quote"
    id: Mapped[int] = mapped_column(Id, primary_key=True)
    number: Mapped[str] = mapped_column(String(100))
    revision: Mapped[int] = mapped_column(Integer, default=1)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deal.id"), index=True)
    activity_id: Mapped[int | None] = mapped_column(ForeignKey("activity.id"))
    issue_date: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    subtotal: Mapped[Decimal] = mapped_column(Numeric(18, 0))
    tax: Mapped[Decimal] = mapped_column(Numeric(18, 0))
    total: Mapped[Decimal] = mapped_column(Numeric(18, 0))
    document: Mapped[dict[str, Any]] = mapped_column(Json)
    files: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    remarks: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    __table_args__ = (
        UniqueConstraint("number", "revision", name="uq_quote_number_revision"),
        Index("ix_quote_number", "number"),
    )
