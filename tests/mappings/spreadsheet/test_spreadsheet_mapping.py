"""Rows of real-looking exports → unified records; values read as Japanese offices write them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from flows.sources import registry
from flows.sources import spreadsheet as src
from flows.workspace import Company, Workspace
from kizuna.errors import BadRecord, ConfigError
from mappings.spreadsheet import values as v
from mappings.spreadsheet.rows import SheetMapping
from warehouse import records as r

JA_ROW = {
    "顧客ID": "C001",
    "会社名": "株式会社いろは商事",
    "法人番号": "1234-5678-9012-3",
    "Webサイト": "https://www.iroha.co.jp/about",
    "業種": "卸売業",
    "住所": "東京都千代田区丸の内1-1-1",
    "氏名": "田中　太郎",
    "フリガナ": "ﾀﾅｶ ﾀﾛｳ",
    "メールアドレス": "T.Tanaka@Iroha.co.jp",
    "電話番号": "03-1234-5678",
    "携帯電話": "０９０−１２３４−５６７８",
    "部署": "営業部",
    "役職": "部長",
    "性別": "男性",
    "生年月日": "昭和55年4月1日",
    "担当営業": "sato@our.co.jp",
    "案件名": "基幹システム刷新",
    "フェーズ": "提案",
    "金額": "￥１,２００,０００",
    "確度": "60%",
    "受注予定日": "令和8年1月5日",
    "会員ランク": "ゴールド",
}


def _map(row: dict[str, str], **kw: object) -> list[r.Record]:
    return SheetMapping(**kw)(row, row.get("顧客ID") or row.get("ID") or "k")  # type: ignore[arg-type]


def _one(
    recs: list[r.Record], kind: type[r.Organization] | type[r.Person] | type[r.Deal]
) -> object:
    (hit,) = [x for x in recs if isinstance(x, kind)]
    return hit


def test_japanese_headers_known_out_of_the_box() -> None:
    recs = _map(JA_ROW)
    org = _one(recs, r.Organization)
    person = _one(recs, r.Person)
    deal = _one(recs, r.Deal)
    assert isinstance(org, r.Organization) and isinstance(person, r.Person)
    assert isinstance(deal, r.Deal)
    assert {x.source_id for x in recs} == {"C001"}
    assert org.name == "株式会社いろは商事" and org.domain == "iroha.co.jp"
    assert org.corporate_number == "1234567890123" and org.industry == "卸売業"
    assert (person.family_name, person.given_name) == ("田中", "太郎")
    assert (person.family_name_kana, person.given_name_kana) == ("タナカ", "タロウ")
    assert person.emails == ["t.tanaka@iroha.co.jp"]
    assert person.phones == ["+81312345678", "+819012345678"]
    assert person.gender == "male" and person.birth_date == date(1980, 4, 1)
    assert person.organization == r.OrgRef(
        name="株式会社いろは商事", domain="iroha.co.jp", corporate_number="1234567890123"
    )
    assert person.owner_email == "sato@our.co.jp"
    assert person.attributes == {"会員ランク": "ゴールド"}
    assert deal.amount == Decimal(1200000) and deal.currency == "JPY"
    assert deal.probability == 60 and deal.expected_close == date(2026, 1, 5)
    assert deal.contact_email == "t.tanaka@iroha.co.jp" and deal.status == "open"


def test_english_headers_and_given_first_names() -> None:
    row = {
        "ID": "7",
        "Company": "Acme Corp.",
        "Name": "Mary Ann Smith",
        "E-mail": "mary@acme.com",
        "Phone": "+1 (415) 555-0100",
        "Deal Name": "Renewal",
        "Stage": "Closed Won",
        "Amount": "$12,500.50",
        "Close Date": "2026-03-31",
    }
    recs = _map(row, phone_region="US")
    person = _one(recs, r.Person)
    deal = _one(recs, r.Deal)
    assert isinstance(person, r.Person) and isinstance(deal, r.Deal)
    assert (person.family_name, person.given_name) == ("Smith", "Mary Ann")
    assert person.phones == ["+14155550100"]
    assert (deal.amount, deal.currency, deal.status) == (Decimal("12500.50"), "USD", "won")


def test_custom_column_map_overrides_and_extends_defaults() -> None:
    row = {"会員番号": "M1", "取引先担当者": "山田 花子", "会社名": "無視する", "ランク": "A"}
    m = SheetMapping(
        columns={
            "取引先担当者": "person.full_name",
            "会社名": "ignore",
            "ランク": "attributes.rank",
        },
        key="会員番号",
    )
    recs = m(row, "M1")
    assert len(recs) == 1
    person = recs[0]
    assert isinstance(person, r.Person)
    assert person.family_name == "山田" and person.attributes == {"rank": "A"}


@pytest.mark.parametrize(
    ("header", "value", "fragment"),
    [
        ("メールアドレス", "tanaka＠", "メールアドレス: not an email address: 'tanaka＠'"),
        ("受注予定日", "2026/13/45", "受注予定日: no such date: '2026/13/45'"),
        ("受注予定日", "来月", "受注予定日: not a date: '来月'"),
        ("金額", "約300万", "金額: not an amount: '約300万'"),
        ("生年月日", "1980/02/30", "生年月日: no such date"),
    ],
)
def test_bad_values_name_the_column_and_the_value(header: str, value: str, fragment: str) -> None:
    with pytest.raises(BadRecord) as exc:
        _map({**JA_ROW, header: value})
    assert fragment in exc.value.reason


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("12345", "not a 13-digit 法人番号: '12345'"),
        ("7.00001E+12", "'7.00001E+12' is Excel's exponent form"),
    ],
)
def test_a_bad_corporate_number_drops_the_cell_and_the_row_lands(value: str, fragment: str) -> None:
    recs = _map({**JA_ROW, "法人番号": value})
    org = _one(recs, r.Organization)
    assert isinstance(org, r.Organization) and org.corporate_number is None
    assert isinstance(_one(recs, r.Person), r.Person)
    issue = _one(recs, r.CellIssue)
    assert isinstance(issue, r.CellIssue)
    assert (issue.column, issue.value) == ("法人番号", value) and fragment in issue.reason


def test_a_bad_phone_or_rank_is_kept_not_rejected() -> None:
    recs = _map({**JA_ROW, "電話番号": "内線123", "確度": "A"})
    person = _one(recs, r.Person)
    deal = _one(recs, r.Deal)
    assert isinstance(person, r.Person) and isinstance(deal, r.Deal)
    assert person.attributes["電話番号"] == "内線123"
    issue = _one(recs, r.CellIssue)
    assert isinstance(issue, r.CellIssue) and issue.reason == "not a phone number"
    assert deal.probability is None and deal.attributes == {"確度": "A"}


def test_row_with_only_a_company_gives_an_organization() -> None:
    recs = _map({"顧客ID": "1", "会社名": "(株)ABC", "電話番号": "06-1234-5678", "メモ": "x"})
    assert len(recs) == 1
    org = recs[0]
    assert isinstance(org, r.Organization)
    assert org.phone == "+81612345678" and org.attributes == {"メモ": "x"}


def test_row_without_anything_mapped_is_bad() -> None:
    with pytest.raises(BadRecord, match="no company, contact or deal"):
        _map({"顧客ID": "1", "会社名": " ", "メモ": "x"})


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2026/01/05", date(2026, 1, 5)),
        ("2026/1/5", date(2026, 1, 5)),
        ("2026-01-05", date(2026, 1, 5)),
        ("2026-01-05 00:00:00", date(2026, 1, 5)),
        ("２０２６年１月５日", date(2026, 1, 5)),
        ("令和8年1月5日", date(2026, 1, 5)),
        ("令和元年5月1日", date(2019, 5, 1)),
        ("R8.1.5", date(2026, 1, 5)),
        ("H31/4/30", date(2019, 4, 30)),
        ("20260105", date(2026, 1, 5)),
        ("46027", date(2026, 1, 5)),
        ("46027.5", date(2026, 1, 5)),
        ("", None),
    ],
)
def test_dates(text: str, want: date | None) -> None:
    assert v.parse_date(text) == want


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("¥1,200,000", (Decimal(1200000), "JPY")),
        ("1,200,000円", (Decimal(1200000), "JPY")),
        ("１，２００，０００", (Decimal(1200000), None)),
        ("120万円", (Decimal(1200000), "JPY")),
        ("1.5億", (Decimal(150000000), None)),
        ("△5,000", (Decimal(-5000), None)),
        ("1200000.5", (Decimal("1200000.5"), None)),
    ],
)
def test_amounts(text: str, want: tuple[Decimal, str | None]) -> None:
    assert v.parse_amount(text) == want


def test_half_width_kana_full_name_split_and_folded() -> None:
    assert v.split_name(v.kana("ｽｽﾞｷ　ﾊﾅｺ")) == ("スズキ", "ハナコ")
    assert v.split_name("田中太郎") == (None, None)


def _ws(tmp_path: Path, sources: dict[str, dict[str, object]]) -> Workspace:
    return Workspace(company=Company(name="我社"), sources=sources, path=tmp_path / "k.yaml")


def test_config_rejects_unknown_target_naming_the_header(tmp_path: Path) -> None:
    ws = _ws(
        tmp_path,
        {"crm": {"type": "spreadsheet", "path": "a.csv", "columns": {"担当": "person.fullname"}}},
    )
    with pytest.raises(ConfigError) as exc:
        registry.source_config(ws, "crm")
    assert exc.value.field == "sources.crm.columns.担当"
    assert "person.full_name" in exc.value.problem  # the valid targets are listed


def test_config_defaults_and_stream_spec(tmp_path: Path) -> None:
    ws = _ws(tmp_path, {"crm": {"type": "spreadsheet", "path": "data/a.csv"}})
    cfg = registry.source_config(ws, "crm")
    assert isinstance(cfg, src.Config)
    assert (cfg.encoding, cfg.on_missing, cfg.stream) == ("auto", "mark_deleted", "rows")
    (spec,) = registry.streams(ws, "crm")
    assert spec.unique_ids and spec.stream == "rows"
    other = src.streams("crm", src.Config(path="data/a.csv", columns={"X": "attributes.x"}), ws)[0]
    assert other.fingerprint != spec.fingerprint


def test_japanese_phone_shortcut_agrees_with_libphonenumber() -> None:
    import random

    from mappings.spreadsheet.rows import phone
    from warehouse.identity.keys.normalize import normalize_phone

    rnd = random.Random(2)
    for _ in range(3000):
        digits = "0" + "".join(rnd.choice("0123456789") for _ in range(rnd.choice([8, 9, 10, 11])))
        cut = sorted(rnd.sample(range(1, len(digits)), 2))
        sep = rnd.choice(["-", " ", "－", ""])
        text = digits[: cut[0]] + sep + digits[cut[0] : cut[1]] + sep + digits[cut[1] :]
        if rnd.random() < 0.2:
            text = text.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
        assert phone(text, "JP") == normalize_phone(text, "JP"), text


def test_japanese_owner_and_address_headers_are_guessed_right() -> None:
    """担当者/担当/営業担当 are our rep (not the contact); 都道府県 is part of the address."""
    for header in ("担当者", "担当", "営業担当"):
        recs = SheetMapping()(
            {
                "会社名": "いろは",
                "氏名": "田中太郎",
                header: "Sato@Ours.co.jp",
                "都道府県": "東京都",
                "住所": "千代田区丸の内1-1",
            },
            "C1",
        )
        org, person = recs[0], recs[1]
        assert isinstance(org, r.Organization) and isinstance(person, r.Person)
        assert person.full_name == "田中太郎" and person.owner_email == "sato@ours.co.jp"
        assert org.address == "東京都千代田区丸の内1-1"
        assert "都道府県" not in person.attributes


def test_a_rep_name_in_the_owner_column_is_kept_not_refused() -> None:
    person = SheetMapping()({"氏名": "田中太郎", "担当者": "佐藤", "メール": "t@x.jp"}, "C1")[0]
    assert isinstance(person, r.Person)
    assert person.owner_email is None and person.attributes["担当者"] == "佐藤"
