"""The header-guess table: which unified field a column feeds when the workspace says nothing.

Headers are compared folded (width, case, spaces, '-', '_', '・' ignored). Ambiguous Japanese
headers are settled the way Japanese exports use them: 担当者 / 担当 / 営業担当 name the sales
rep who owns the customer (``owner.email``), not the contact; 都道府県, 市区町村 and 番地 are
parts of the address and are joined in column order. ``kizuna sources discover`` prints what
this table decided for each header of a file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mappings.spreadsheet import catalog
from mappings.spreadsheet import values as v

_DEFAULTS: dict[str, tuple[str, ...]] = {
    "id": ("顧客ID", "顧客番号", "取引先ID", "レコードID", "ID", "Customer ID", "Record ID"),
    "organization.name": (
        "会社名",
        "取引先名",
        "企業名",
        "社名",
        "法人名",
        "勤務先",
        "Company",
        "Company Name",
        "Account Name",
        "Organization",
    ),
    "organization.domain": (
        "URL",
        "Webサイト",
        "ウェブサイト",
        "ホームページ",
        "会社URL",
        "Website",
        "Web Site",
        "Domain",
    ),
    "organization.corporate_number": ("法人番号", "Corporate Number"),
    "organization.industry": ("業種", "業界", "Industry"),
    "organization.size": ("従業員数", "企業規模", "Employees", "Company Size"),
    "organization.address": (
        "都道府県",
        "市区町村",
        "住所",
        "住所1",
        "住所2",
        "番地",
        "建物名",
        "所在地",
        "会社住所",
        "Address",
        "Prefecture",
        "State",
        "City",
        "Street",
    ),
    "organization.phone": ("代表電話", "会社電話番号", "代表電話番号", "Company Phone"),
    "person.full_name": (
        "氏名",
        "担当者名",
        "ご担当者名",
        "お名前",
        "名前",
        "Name",
        "Full Name",
        "Contact Name",
    ),
    "person.family_name": ("姓", "Last Name", "Family Name", "Surname"),
    "person.given_name": ("名", "First Name", "Given Name"),
    "person.full_name_kana": (
        "フリガナ",
        "ふりがな",
        "氏名（カナ）",
        "氏名カナ",
        "氏名（フリガナ）",
        "担当者名（カナ）",
        "カナ",
    ),
    "person.family_name_kana": ("セイ", "姓（カナ）", "姓カナ", "姓（フリガナ）"),
    "person.given_name_kana": ("メイ", "名（カナ）", "名カナ", "名（フリガナ）"),
    "person.email": (
        "メールアドレス",
        "メール",
        "Eメール",
        "E-mail",
        "Email",
        "Email Address",
        "Mail",
    ),
    "person.phone": (
        "電話番号",
        "電話",
        "携帯電話",
        "携帯電話番号",
        "携帯番号",
        "携帯",
        "TEL",
        "Phone",
        "Phone Number",
        "Mobile",
        "Mobile Phone",
    ),
    "person.title": ("役職", "役職名", "肩書", "Title", "Job Title"),
    "person.department": ("部署", "部署名", "所属", "所属部署", "Department"),
    "person.gender": ("性別", "Gender"),
    "person.birth_date": ("生年月日", "誕生日", "Birthday", "Birth Date", "Date of Birth"),
    "person.lifecycle_stage": ("ライフサイクル", "Lifecycle Stage"),
    "deal.name": ("案件名", "商談名", "Deal", "Deal Name", "Opportunity", "Opportunity Name"),
    "deal.stage": ("フェーズ", "ステージ", "商談ステージ", "案件フェーズ", "Stage", "Phase"),
    "deal.amount": ("金額", "受注金額", "見込金額", "商談金額", "案件金額", "Amount"),
    "deal.currency": ("通貨", "Currency"),
    "deal.probability": ("確度", "受注確度", "Probability"),
    "deal.expected_close": (
        "受注予定日",
        "完了予定日",
        "クローズ予定日",
        "成約予定日",
        "Close Date",
        "Expected Close",
    ),
    # 担当 in a Japanese export is our side: the rep who owns the customer, not the contact
    # (the contact is 担当者名 / ご担当者名 / 氏名).
    "owner.email": (
        "担当者",
        "担当",
        "担当営業",
        "営業担当",
        "営業担当者",
        "担当営業メール",
        "担当者メール",
        "Owner",
        "Owner Email",
        "Account Owner",
        "Sales Rep",
    ),
    **catalog.HEADERS,
}

_FOLD = re.compile(r"[\s_\-.・]+")


def fold(header: str) -> str:
    """Headers compared loosely: width, case, spaces and 'E-mail'/'email' do not matter."""
    return _FOLD.sub("", v.nfkc(header).casefold())


DEFAULT_COLUMNS: dict[str, str] = {
    fold(h): target for target, headers in _DEFAULTS.items() for h in headers
}
"""Folded header → target, for headers every export tool writes."""

DEFAULT_KEYS: tuple[str, ...] = _DEFAULTS["id"]
"""Row-key columns tried in order when the workspace does not name one; a file with none of
them is keyless and its rows are named by their content (never by a mail address, which a
team mailbox or a person's second row repeats)."""


@dataclass(frozen=True)
class HeaderUse:
    """What one header of a file feeds, and who decided: the workspace or the built-in table."""

    header: str
    target: str
    origin: str
    """``configured`` (the source's ``columns:``), ``built-in`` or ``unmapped`` (kept as an
    attribute under its own name)."""


def explain(
    headers: Sequence[str], columns: Mapping[str, str], key: str | None = None
) -> list[HeaderUse]:
    """Each header's target, decided exactly as :class:`rows.SheetMapping` decides it."""
    custom = {fold(h): t for h, t in columns.items()}
    out: list[HeaderUse] = []
    for h in headers:
        f = fold(h)
        if f in custom:
            out.append(HeaderUse(h, custom[f], "configured"))
        elif f in DEFAULT_COLUMNS:
            out.append(HeaderUse(h, DEFAULT_COLUMNS[f], "built-in"))
        elif key is not None and f == fold(key):
            out.append(HeaderUse(h, "id", "configured"))
        else:
            out.append(HeaderUse(h, f"attributes.{h}", "unmapped"))
    return out
