"""The ``quotes:`` section of the workspace file: the seller's side of every quote.

```yaml
quotes:
  seller:
    name: 株式会社サンプル
    address: 〒100-0001 東京都千代田区千代田1-1
    phone: 03-1234-5678
    registration_number: T1234567890123   # 適格請求書発行事業者登録番号 (check digit tested)
  series: Q-{yyyy}-{seq:04}   # {yyyy} {yy} {mm} {dd} before {seq}; restarts when they change
  validity_days: 30           # 有効期限 = issue date + this
  rounding: floor             # 消費税 per rate: floor (切り捨て) | ceil (切り上げ) | half_up (四捨五入)
  price_list: standard        # the price list that prices lines without their own unit price
  payment_terms: 月末締め翌月末払い
  remarks: 本見積書の有効期限内にご発注ください。
  output_dir: quotes          # where the HTML and PDF files go, relative to the workspace file
```
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flows import storage
from flows.storage import Storage
from flows.workspace import Workspace, config_error
from kizuna.errors import ConfigError
from warehouse.quotes import registration
from warehouse.quotes.documents import Settings
from warehouse.quotes.numbering import DEFAULT_SERIES, Series
from warehouse.quotes.tax import Rounding


class Seller(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    address: str = ""
    phone: str = ""
    registration_number: str = Field(min_length=1)
    """適格請求書発行事業者登録番号: T + 13 digits."""

    @field_validator("registration_number")
    @classmethod
    def _registration(cls, v: str) -> str:
        return registration.parse(v)


class QuotesConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seller: Seller
    series: str = DEFAULT_SERIES
    validity_days: int = Field(default=30, ge=1, le=365)
    rounding: Rounding = "floor"
    price_list: str = Field(default="standard", min_length=1)
    payment_terms: str = ""
    remarks: str = ""
    output_dir: str = "quotes"

    @field_validator("series")
    @classmethod
    def _series(cls, v: str) -> str:
        Series(v)  # raises ValueError naming the problem
        return v

    def settings(self) -> Settings:
        return Settings(
            seller=self.seller.model_dump(),
            series=Series(self.series),
            validity_days=self.validity_days,
            rounding=self.rounding,
            price_list=self.price_list,
            payment_terms=self.payment_terms,
            remarks=self.remarks,
        )


def quotes_config(ws: Workspace) -> QuotesConfig:
    if not ws.quotes:
        raise ConfigError(
            "no `quotes:` section",
            file=str(ws.path),
            field="quotes",
            fix="add `quotes:` with at least `seller: {name: …, registration_number: T…}` "
            "(see README, Quotes)",
        )
    try:
        return QuotesConfig.model_validate(ws.quotes)
    except ValidationError as exc:
        raise config_error(exc, ws.path, "quotes") from None


def output_dir(ws: Workspace, cfg: QuotesConfig) -> Storage:
    """The quotes folder: under ``KIZUNA_STORAGE_URL`` when set and the folder is relative
    (every worker sees it), else beside the workspace file (``flows.storage``)."""
    if Path(cfg.output_dir).is_absolute():
        return Storage(str(ws.resolve(cfg.output_dir)))
    return storage.root(ws).sub(*Path(cfg.output_dir).parts)
