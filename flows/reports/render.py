"""Turning report data into the 日報 (Markdown and HTML) and the pipeline page (HTML).

HTML is rendered with autoescape on, so a customer called ``<script>`` stays text. The
Markdown is rendered with every value backslash-escaped (``finalize``): a subject full of
``*`` or ``<`` cannot turn into markup when a viewer renders the draft. Labels live in
:data:`LABELS`, one dict per language, so the templates hold layout only.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from warehouse.reporting.model import DailyData
from warehouse.reporting.pipeline import Pipeline

WEEKDAYS = {"ja": "月火水木金土日", "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")}

LABELS: dict[str, dict[str, str]] = {
    "ja": {
        "daily": "日報",
        "summary": "本日の活動",
        "meetings": "商談",
        "mail": "メール",
        "deals": "案件の動き",
        "follow_ups": "フォローアップ待ち",
        "next": "明日の予定",
        "notes": "所感",
        "notes_hint": "（本日の所感・課題・明日の方針を記入してください）",
        "none": "なし",
        "count_meetings": "商談",
        "count_sent": "送信メール",
        "count_received": "受信メール",
        "count_deals": "案件更新",
        "count_follow": "フォローアップ待ち",
        "unit_items": "件",
        "unit_mail": "通",
        "customers": "顧客",
        "staff": "社内同席",
        "location": "場所",
        "related": "関連案件",
        "sent": "送信",
        "received": "受信",
        "internal_mail": "社内メール",
        "sep": "・",
        "new_deal": "新規",
        "stage_change": "フェーズ変更",
        "no_mail_since": "日経過・メール未送信",
        "today": "本日",
        "no_subject": "（件名なし）",
        "generated": "Kizuna が自動作成した下書きです",
        "pipeline": "パイプライン",
        "as_of": "時点",
        "open_pipeline": "進行中の案件",
        "weighted": "加重パイプライン",
        "closing_month": "今月受注予定",
        "won_month": "今月の受注",
        "stale": "停滞案件",
        "avg_deal": "平均案件額",
        "deals_unit": "件",
        "funnel": "フェーズ別",
        "stage": "フェーズ",
        "count": "件数",
        "amount": "金額",
        "conversion": "次フェーズ移行率",
        "avg_days": "平均滞留日数",
        "avg_age": "現在の滞留日数",
        "by_owner": "担当者別",
        "by_team": "チーム別",
        "owner": "担当者",
        "team": "チーム",
        "closing": "今月受注予定額",
        "won": "今月受注額",
        "closing_this": "今月の受注予定",
        "closing_next": "来月の受注予定",
        "overdue": "受注予定日超過",
        "deal": "案件",
        "company": "会社",
        "probability": "確度",
        "close": "受注予定日",
        "last_touch": "最終接点",
        "idle": "経過日数",
        "quote": "見積",
        "never": "記録なし",
        "unassigned": "未割当",
        "days": "日",
        "stale_rule": "{n}日以上メール・商談・フェーズ変更がない進行中案件",
        "other_currency": "円以外の通貨の案件 {n} 件は金額に含めていません",
        "more": "ほか {n} 件",
        "lost_month": "今月の失注",
        "total": "計",
    },
    "en": {
        "daily": "Daily report",
        "summary": "Today's activity",
        "meetings": "Meetings",
        "mail": "Mail",
        "deals": "Deals",
        "follow_ups": "Waiting for a follow-up",
        "next": "Next day",
        "notes": "Notes",
        "notes_hint": "(Your notes, issues and plan for tomorrow.)",
        "none": "None",
        "count_meetings": "meetings",
        "count_sent": "sent",
        "count_received": "received",
        "count_deals": "deals updated",
        "count_follow": "follow-ups due",
        "unit_items": "",
        "unit_mail": "",
        "customers": "Customers",
        "staff": "Colleagues",
        "location": "Location",
        "related": "Deals",
        "sent": "sent",
        "received": "received",
        "internal_mail": "Internal mail",
        "sep": ", ",
        "new_deal": "New",
        "stage_change": "Stage",
        "no_mail_since": "days, no mail sent since",
        "today": "today",
        "no_subject": "(no subject)",
        "generated": "Draft written by Kizuna",
        "pipeline": "Pipeline",
        "as_of": "as of",
        "open_pipeline": "Open pipeline",
        "weighted": "Weighted pipeline",
        "closing_month": "Closing this month",
        "won_month": "Won this month",
        "stale": "Stale deals",
        "avg_deal": "Average deal",
        "deals_unit": "deals",
        "funnel": "By stage",
        "stage": "Stage",
        "count": "Deals",
        "amount": "Amount",
        "conversion": "Moved on",
        "avg_days": "Avg. days in stage",
        "avg_age": "Days in stage now",
        "by_owner": "By owner",
        "by_team": "By team",
        "owner": "Owner",
        "team": "Team",
        "closing": "Closing this month",
        "won": "Won this month",
        "closing_this": "Expected to close this month",
        "closing_next": "Expected to close next month",
        "overdue": "Past expected close",
        "deal": "Deal",
        "company": "Company",
        "probability": "Prob.",
        "close": "Expected close",
        "last_touch": "Last touch",
        "idle": "Idle days",
        "quote": "Quote",
        "never": "never",
        "unassigned": "Unassigned",
        "days": "d",
        "stale_rule": "Open deals with no mail, meeting or stage change for {n}+ days",
        "other_currency": "{n} deals in other currencies are counted but not summed",
        "more": "{n} more",
        "lost_month": "Lost this month",
        "total": "Total",
    },
}


def yen(amount: Decimal | int | float | None) -> str:
    """``¥1,234,568``: whole yen (JPY has no minor unit), rounded half up."""
    if amount is None:
        return "—"
    n = Decimal(str(amount)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return f"-¥{-n:,}" if n < 0 else f"¥{n:,}"


def yen_short(amount: Decimal | int | float | None, lang: str = "ja") -> str:
    """Tile-sized amounts: 88億1,950万円 / 1,235万円 in Japanese, ¥12.3M in English."""
    if amount is None:
        return "—"
    n = Decimal(str(amount))
    sign = "-" if n < 0 else ""
    n = abs(n)
    if lang == "ja":
        if n < 10_000:
            return f"{sign}{n.quantize(Decimal(1), ROUND_HALF_UP):,}円"
        man = int((n / 10_000).quantize(Decimal(1), ROUND_HALF_UP))
        oku, man = divmod(man, 10_000)
        if not oku:
            return f"{sign}{man:,}万円"
        return f"{sign}{oku:,}億" + (f"{man:,}万円" if man else "円")
    for div, suffix in ((Decimal(1_000_000_000), "B"), (Decimal(1_000_000), "M")):
        if n >= div:
            return f"{sign}¥{(n / div).quantize(Decimal('0.1'), ROUND_HALF_UP)}{suffix}"
    return f"{sign}{yen(n)}"


def day_label(d: date | datetime, lang: str = "ja", year: bool = True) -> str:
    dd = d.date() if isinstance(d, datetime) else d
    if lang == "ja":
        base = f"{dd.year}年{dd.month}月{dd.day}日" if year else f"{dd.month}/{dd.day}"
        return f"{base}({WEEKDAYS['ja'][dd.weekday()]})"
    wd = WEEKDAYS["en"][dd.weekday()]
    return f"{wd} {dd.day} {dd:%b}" + (f" {dd.year}" if year else "")


def hm(ts: datetime | None) -> str:
    return ts.strftime("%H:%M") if ts else ""


def pct(x: float | None) -> str:
    return "—" if x is None else f"{round(x * 100)}%"


def num(x: float | None, digits: int = 1) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~!])")


def _one_line(text: str) -> str:
    """Line breaks and the blanks around them become one space (linear: no regex that
    backtracks over a long blank run, which made 日報 text quadratic)."""
    if "\n" not in text and "\r" not in text:
        return text
    lines = text.replace("\r", "\n").split("\n")
    last = len(lines) - 1
    kept: list[str] = []
    for i, line in enumerate(lines):
        piece = line.lstrip() if i else line
        piece = piece.rstrip() if i < last else piece
        if piece or i in (0, last):
            kept.append(piece)
    return " ".join(kept)


def md_escape(value: Any) -> Any:
    """Every value printed into Markdown is literal text, on one line."""
    if isinstance(value, str):
        return _MD_SPECIAL.sub(r"\\\1", _one_line(value))
    return value


def _env(html: bool) -> Environment:
    env = Environment(
        loader=PackageLoader("flows.reports", "templates"),
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=None if html else md_escape,
    )
    env.filters.update(yen=yen, yen_short=yen_short, day=day_label, hm=hm, pct=pct, num=num)
    return env


@cache
def environment(html: bool) -> Environment:
    return _env(html)


def _context(lang: str, **kw: Any) -> dict[str, Any]:
    return {"L": LABELS[lang], "lang": lang, **kw}


def daily_markdown(data: DailyData, lang: str = "ja", company: str = "") -> str:
    tpl = environment(False).get_template("daily.md.j2")
    return tpl.render(_context(lang, r=data, company=company))


def daily_html(data: DailyData, lang: str = "ja", company: str = "") -> str:
    tpl = environment(True).get_template("daily.html.j2")
    return tpl.render(_context(lang, r=data, company=company))


def pipeline_html(p: Pipeline, lang: str = "ja", company: str = "", generated: str = "") -> str:
    tpl = environment(True).get_template("pipeline.html.j2")
    top = max((s.amount for s in p.stages), default=Decimal(0))
    return tpl.render(_context(lang, p=p, company=company, top=top, generated=generated))
