"""Matching units: normalisation, readings, rules and score thresholds (pure, no database)."""

from __future__ import annotations

import pytest

from warehouse.identity.blocking import digest
from warehouse.identity.keys.matching import (
    MatchSettings,
    PersonFeatures,
    canonical_email,
    company_domain,
    fold_text,
    person_features,
    reading_tokens,
)
from warehouse.identity.keys.normalize import normalize_org_name, normalize_phone
from warehouse.identity.linkage import index
from warehouse.identity.linkage.features import Columns

S = MatchSettings()


def _p(i: int, **row: object) -> PersonFeatures:
    emails = row.pop("emails", [])
    phones = row.pop("phones", [])
    org = row.pop("org", None)
    return person_features(i, dict(row), emails, phones, org, S)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "written",
    [
        "田中 太郎",
        "田中太郎",
        "タナカ タロウ",
        "ﾀﾅｶ ﾀﾛｳ",
        "たなか たろう",
        "TANAKA Taro",
        "Tarō Tanaka",
    ],
)
def test_every_script_reads_the_same(written: str) -> None:
    assert sorted(reading_tokens(written)) == ["tanaka", "taro"]


def test_variant_kanji_and_width_fold() -> None:
    assert fold_text("髙橋") == fold_text("高橋")
    assert fold_text("ＡＢＣ") == "abc"
    assert fold_text("カタカナ") == fold_text("かたかな")
    assert reading_tokens("髙橋") == reading_tokens("高橋") == reading_tokens("タカハシ")


@pytest.mark.parametrize(
    ("raw", "canon"),
    [
        ("T.Tanaka+crm@GMail.com", "ttanaka@gmail.com"),
        ("t.tanaka@googlemail.com", "ttanaka@gmail.com"),
        ("taro+news@outlook.com", "taro@outlook.com"),
        ("t.tanaka+x@abc.co.jp", "t.tanaka@abc.co.jp"),  # dots matter at a company server
    ],
)
def test_provider_alias_rules(raw: str, canon: str) -> None:
    assert canonical_email(raw) == canon


def test_provider_aliases_can_be_switched_off() -> None:
    assert canonical_email("t.tanaka@gmail.com", provider_aliases=False) == "t.tanaka@gmail.com"


def test_free_mail_never_identifies_a_company() -> None:
    assert company_domain("taro@gmail.com") == ""
    assert company_domain("taro@docomo.ne.jp") == ""
    assert company_domain("taro@abc.co.jp") == "abc.co.jp"
    f = _p(1, full_name="田中太郎", emails=["taro@yahoo.co.jp"])
    _, _, tags = index.keys(Columns.of([f]))
    assert f.domain == "" and index.TAG["no"] not in tags.tolist()


def test_phones_become_e164_with_the_configured_region() -> None:
    assert normalize_phone("03-1234-5678") == "+81312345678"
    assert normalize_phone("０９０－１２３４－５６７８") == "+819012345678"
    assert normalize_phone("(415) 555-2671", "US") == "+14155552671"
    us = MatchSettings(phone_region="US")
    f = person_features(1, {"full_name": "x"}, [], ["(415) 555-2671"], None, us)
    assert f.phones == ("+14155552671",)


@pytest.mark.parametrize(
    "name", ["株式会社ABC", "(株)ＡＢＣ", "ABC Co., Ltd.", "ABC株式会社", "ABC Inc."]
)
def test_legal_forms_are_stripped(name: str) -> None:
    assert normalize_org_name(name) == "abc"


def test_features_round_trip_and_key_digest_is_stable() -> None:
    f = _p(7, family_name="田中", given_name="太郎", emails=["a@b.co.jp"], phones=["0312345678"])
    assert PersonFeatures.loads(7, next(index.dumps(Columns.of([f])))[1][0]) == f
    # Stored digests must mean the same key in every later process and on every machine.
    assert digest("e|a@b.co.jp") == 8177321661227466289
    assert digest("e|a@b.co.jp ") != digest("e|a@b.co.jp")


def test_a_batch_of_company_names_leaves_no_per_name_cache_behind() -> None:
    from warehouse.identity.keys import matching as mt

    names = ["株式会社ABC商事 大阪支店", "(株)ＡＢＣ商事", None, "Next Tech Inc.", "ネクストテック"]
    want = [mt.org_part(n) for n in names]
    mt.forget_names()
    assert mt.org_parts(names) == want
    # Each name is read once a run (its memo keeps the parts): nothing of it is kept.
    steps = (mt._org_sound, mt.org_key, mt.org_written, mt.strip_branch, mt.legal_form)
    assert all(step.cache_info().currsize == 0 for step in steps)
