"""A rep's reminders as one digest a day, in the workspace's language only.

Grouped by kind (close dates first: they cost money when missed), each item says who the
customer is, which deal, why it is due and what to do next. Times are in the company's zone
with the zone named. The same text goes to Slack when the reminder channel is a webhook; the
HTML part is what a mail client shows.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from connectors.mail.compose import Content

ORDER = ("close_date", "meeting_no_followup", "deal_idle", "key_account_quiet")

_T: dict[str, dict[str, str]] = {
    "ja": {
        "close_date": "受注予定日",
        "meeting_no_followup": "商談後のフォローアップ",
        "deal_idle": "動きのない案件",
        "key_account_quiet": "接点の途絶えた重要顧客",
        "subject": "[Kizuna] {date} のリマインダー {n}件",
        "hello": "{name} さん",
        "intro": "{date} 時点で対応が必要な項目が {n} 件あります。",
        "customer": "顧客",
        "deal": "案件",
        "why": "理由",
        "next": "次の一手",
        "close_passed": "受注予定日 {d} を過ぎています（フェーズ: {stage}）",
        "close_near": "受注予定日 {d} が近づいています（フェーズ: {stage}）",
        "close_next": "見込みを確認し、受注予定日かフェーズを更新してください",
        "followup_why": "{held} の商談後、{due} までにお礼・フォローのメールが送られていません",
        "followup_next": "商談のお礼と次のステップをメールで送ってください",
        "idle_why": "{days} 日間、メール・商談・フェーズ変更がありません（最終: {last}）",
        "idle_next": "顧客に連絡して状況を確認するか、案件をクローズしてください",
        "quiet_why": "{days} 日以上接点がありません（最終: {last}）",
        "quiet_next": "担当者に近況伺いの連絡を入れてください",
        "never": "記録なし",
        "footer": "条件が解消されると、Kizuna が自動的にクローズします。",
        "none": "—",
    },
    "en": {
        "close_date": "Close dates",
        "meeting_no_followup": "Follow-ups after meetings",
        "deal_idle": "Deals gone quiet",
        "key_account_quiet": "Key accounts without contact",
        "subject": "[Kizuna] {n} reminders for {date}",
        "hello": "Hello {name},",
        "intro": "{n} items need you as of {date}.",
        "customer": "Customer",
        "deal": "Deal",
        "why": "Why",
        "next": "Next",
        "close_passed": "the expected close date {d} has passed (stage: {stage})",
        "close_near": "the expected close date {d} is near (stage: {stage})",
        "close_next": "confirm the forecast and update the close date or the stage",
        "followup_why": "no follow-up mail since the meeting on {held} (due by {due})",
        "followup_next": "send a thank-you with the agreed next steps",
        "idle_why": "no mail, meeting or stage change for {days} days (last: {last})",
        "idle_next": "contact the customer to check where it stands, or close the deal",
        "quiet_why": "no contact for {days}+ days (last: {last})",
        "quiet_next": "get in touch to hear how they are doing",
        "never": "never",
        "footer": "Kizuna closes each reminder by itself once its condition clears.",
        "none": "—",
    },
}


@dataclass(frozen=True)
class Item:
    kind: str
    customer: str
    deal: str
    why: str
    next: str


def _when(value: Any, tz: str, lang: str, with_time: bool) -> str:
    """An ISO time or date from the facts, as the company reads it (zone named)."""
    if not value:
        return _T[lang]["never"]
    text = str(value)
    try:
        if len(text) <= 10:
            return date.fromisoformat(text).isoformat()
        ts = datetime.fromisoformat(text)
    except ValueError:
        return text
    local = ts.astimezone(ZoneInfo(tz))
    if not with_time:
        return local.date().isoformat()
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or tz}"


def item(kind: str, facts: Mapping[str, Any], lang: str, tz: str) -> Item:
    """One reminder as a person reads it."""
    t = _T[lang]
    customer = str(facts.get("customer") or facts.get("organization") or t["none"])
    deal = str(facts.get("deal") or facts.get("meeting") or t["none"])
    stage = str(facts.get("stage") or t["none"])
    if kind == "close_date":
        key = "close_passed" if facts.get("kind") == "passed" else "close_near"
        why = t[key].format(d=facts.get("expected_close"), stage=stage)
        nxt = t["close_next"]
    elif kind == "meeting_no_followup":
        why = t["followup_why"].format(
            held=_when(facts.get("held"), tz, lang, True), due=facts.get("due")
        )
        nxt = t["followup_next"]
    elif kind == "deal_idle":
        last = _when(facts.get("last_touch"), tz, lang, False)
        why = t["idle_why"].format(days=facts.get("days"), last=last)
        nxt = t["idle_next"]
    else:
        last = _when(facts.get("last_contact"), tz, lang, False)
        why = t["quiet_why"].format(days=facts.get("days", "?"), last=last)
        nxt = t["quiet_next"]
        deal = t["none"]
    return Item(kind, customer, deal, why, nxt)


def render(owner: str, items: Sequence[Item], day: date, lang: str, company: str) -> Content:
    """The digest mail (text and HTML), grouped by kind in :data:`ORDER`."""
    t = _T[lang]
    n = len(items)
    groups = [(k, [i for i in items if i.kind == k]) for k in ORDER]
    groups = [(k, g) for k, g in groups if g]
    text = [t["hello"].format(name=owner), "", t["intro"].format(n=n, date=day.isoformat()), ""]
    for kind, group in groups:
        text.append(f"■ {t[kind]} ({len(group)})")
        for i in group:
            text.append(f"・{i.customer} / {i.deal}")
            text.append(f"  {t['why']}: {i.why}")
            text.append(f"  {t['next']}: {i.next}")
        text.append("")
    text += [t["footer"], f"— Kizuna · {company}"]
    subject = t["subject"].format(n=n, date=day.isoformat())
    return Content(
        subject=subject,
        text="\n".join(text) + "\n",
        html=_html(t, lang, groups, owner, n, day, company),
    )


def _html(
    t: Mapping[str, str],
    lang: str,
    groups: Sequence[tuple[str, Sequence[Item]]],
    owner: str,
    n: int,
    day: date,
    company: str,
) -> str:
    e = html.escape
    parts = [
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><style>'
        "body{font-family:'Noto Sans CJK JP','Noto Sans JP',sans-serif;color:#222;"
        "max-width:760px;margin:24px auto;line-height:1.6}"
        "h2{font-size:16px;border-left:4px solid #c0392b;padding-left:8px;margin-top:28px}"
        "table{border-collapse:collapse;width:100%}"
        "th,td{border-bottom:1px solid #ddd;padding:6px 8px;text-align:left;vertical-align:top;"
        "font-size:14px}th{background:#f6f6f6;white-space:nowrap}td:nth-child(2){white-space:nowrap}"
        ".next{color:#1a5e20}.foot{color:#777;font-size:12px;margin-top:24px}"
        "</style></head><body>",
        f"<p>{e(t['hello'].format(name=owner))}</p>",
        f"<p>{e(t['intro'].format(n=n, date=day.isoformat()))}</p>",
    ]
    for kind, group in groups:
        parts.append(f"<h2>{e(t[kind])} ({len(group)})</h2><table>")
        parts.append(
            f"<tr><th>{e(t['customer'])}</th><th>{e(t['deal'])}</th>"
            f"<th>{e(t['why'])}</th><th>{e(t['next'])}</th></tr>"
        )
        for i in group:
            parts.append(
                f"<tr><td>{e(i.customer)}</td><td>{e(i.deal)}</td><td>{e(i.why)}</td>"
                f'<td class="next">{e(i.next)}</td></tr>'
            )
        parts.append("</table>")
    parts.append(f'<p class="foot">{e(t["footer"])}<br>Kizuna · {e(company)}</p></body></html>')
    return "".join(parts)
