"""Rendering: yen amounts, the 日報 sections in Japanese and English, the pipeline page, and
hostile customer data that must stay text in HTML and in Markdown."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine

from flows.reports.config import reports_config
from flows.reports.render import (
    daily_html,
    daily_markdown,
    md_escape,
    pipeline_html,
    yen,
    yen_short,
)
from flows.workspace import Workspace
from kizuna.errors import ConfigError
from tests.support.reports_seed import Seed, utc
from warehouse.reporting.daily import daily
from warehouse.reporting.pipeline import pipeline
from warehouse.reporting.staff import staff_by_email

HOSTILE_ORG = "<script>alert('org')</script>株式会社"
HOSTILE_PERSON = '"><img src=x onerror=alert(1)>'
HOSTILE_SUBJECT = "**至急** <b>[link](javascript:alert(1))</b>"


@pytest.mark.parametrize(
    "amount,text",
    [
        (0, "¥0"),
        (1234567, "¥1,234,567"),
        (Decimal("1234567.50"), "¥1,234,568"),
        (Decimal("2.5"), "¥3"),  # half up, not banker's rounding
        (Decimal("0.49"), "¥0"),
        (-1500, "-¥1,500"),
        (None, "—"),
    ],
)
def test_yen(amount: Decimal | int | None, text: str) -> None:
    assert yen(amount) == text


@pytest.mark.parametrize(
    "amount,lang,text",
    [
        (123_456_789, "ja", "1億2,346万円"),
        (8_819_500_000, "ja", "88億1,950万円"),
        (300_000_000, "ja", "3億円"),
        (99_999_999, "ja", "1億円"),  # 9,999.9999万 rounds up into the next 億
        (12_345_678, "ja", "1,235万円"),
        (9_999, "ja", "9,999円"),
        (Decimal("-50000"), "ja", "-5万円"),
        (12_345_678, "en", "¥12.3M"),
        (2_500_000_000, "en", "¥2.5B"),
        (999, "en", "¥999"),
    ],
)
def test_yen_short(amount: Decimal | int, lang: str, text: str) -> None:
    assert yen_short(amount, lang) == text


def test_md_escape_keeps_values_literal() -> None:
    assert md_escape("# a *b* <c>\n[d]") == r"\# a \*b\* \<c\> \[d\]"
    assert md_escape(3) == 3


def _seed_hostile(engine: Engine) -> None:
    with engine.begin() as conn:
        s = Seed(conn)
        rep = s.staff("rep@own.example", "山田 太郎")
        org = s.org(HOSTILE_ORG)
        pid = s.person("x@evil.example", HOSTILE_PERSON, org)
        s.activity(
            "meeting",
            utc(2026, 11, 5, 1),
            [
                ("rep@own.example", "organizer", None, rep),
                ("x@evil.example", "attendee", pid, None),
            ],
            subject=HOSTILE_SUBJECT,
        )
        s.activity(
            "email",
            utc(2026, 11, 5, 2),
            [("x@evil.example", "from", pid, None), ("rep@own.example", "to", None, rep)],
            subject=HOSTILE_SUBJECT,
            direction="inbound",
            thread="t",
        )
        s.deal(
            HOSTILE_SUBJECT,
            "提案",
            "1000000",
            history=[("提案", utc(2026, 11, 5, 3))],
            created_at=utc(2026, 10, 1),
            probability=50,
            owner_id=rep,
            org_id=org,
            close=date(2026, 11, 28),
        )


def _no_live_markup(html: str) -> None:
    assert "<script" not in html
    assert "<img" not in html
    assert "<b>" not in html
    assert "&lt;script&gt;" in html


def test_daily_report_sections_and_escaping(engine: Engine) -> None:
    _seed_hostile(engine)
    with engine.connect() as conn:
        staff = staff_by_email(conn, "rep@own.example")
        assert staff is not None
        data = daily(conn, staff, date(2026, 11, 5), "Asia/Tokyo")
    md = daily_markdown(data, "ja", "株式会社サンプル")
    html = daily_html(data, "ja", "株式会社サンプル")
    headings = re.findall(r"^## (.+)$", md, flags=re.M)
    assert headings == [
        "本日の活動",
        "商談",
        "メール",
        "案件の動き",
        "フォローアップ待ち",
        "明日の予定 (11/6(金))",
        "所感",
    ]
    assert md.startswith("# 日報 2026年11月5日(木) — 山田 太郎\n")
    for section in ("本日の活動", "商談", "メール", "明日の予定", "所感"):
        assert f"<h2>{section}" in html
    _no_live_markup(html)
    # In Markdown every special character of customer data is escaped.
    assert r"\<script\>alert('org')\</script\>株式会社" in md
    assert r"\*\*至急\*\* \<b\>\[link\](javascript:alert(1))\</b\>" in md
    assert "<script>" not in md and "**至急**" not in md

    en = daily_markdown(data, "en")
    assert en.startswith("# Daily report Thu 5 Nov 2026")
    assert "## Meetings" in en and "## Notes" in en and "## Next day" in en
    assert 'lang="en"' in daily_html(data, "en")


def test_pipeline_page_is_self_contained_and_escaped(engine: Engine) -> None:
    _seed_hostile(engine)
    with engine.connect() as conn:
        p = pipeline(conn, utc(2026, 11, 20, 3), "Asia/Tokyo")
    html = pipeline_html(p, "ja", "株式会社<サンプル>", "2026-11-20 12:00 JST")
    _no_live_markup(html)
    assert "株式会社&lt;サンプル&gt;" in html
    for section in (
        "進行中の案件",
        "加重パイプライン",
        "フェーズ別",
        "担当者別",
        "今月の受注予定",
        "停滞案件",
    ):
        assert section in html
    assert "¥1,000,000" in html and "¥500,000" in html
    # One page, nothing fetched: inline CSS, no scripts, no external links or assets.
    assert "<style>" in html
    assert not re.search(r"""(src|href)\s*=|<link|https?://|@import""", html)
    en = pipeline_html(p, "en")
    assert "Weighted pipeline" in en and "By stage" in en


def test_reports_section_is_validated(tmp_path: Path) -> None:
    ws = Workspace.model_validate(
        {"company": {"name": "x"}, "reports": {"language": "en", "stale_days": 30}}
    ).model_copy(update={"path": tmp_path / "kizuna.yaml"})
    cfg = reports_config(ws)
    assert (cfg.language, cfg.stale_days, cfg.stages) == ("en", 30, [])
    bad = ws.model_copy(update={"reports": {"language": "fr"}})
    with pytest.raises(ConfigError) as err:
        reports_config(bad)
    assert "reports.language" in str(err.value)
    assert "kizuna.yaml" in str(err.value)
