"""The push half of ``kizuna demo``: sample segments, campaigns and reminder rules, run once
into a local outbox (``<demo>/outbox/*.eml``) a person can open in any mail client.

Wiring (``flows/demo/generate.py``): append ``demo_campaign_config()`` to the generated kizuna.yaml
(``yaml.safe_dump(..., allow_unicode=True, sort_keys=False)``) and call
``run_demo_push(ws_file)`` after the sync; it returns a summary to print. If the workspace has
no ``campaigns:`` yet, the same sample configuration is used in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flows.config import load
from flows.push.campaign_run import approved_plan, open_batches, plan, segment_context
from flows.push.campaign_send import send_batch
from flows.push.channels import build_channel
from flows.push.config import PushConfig, push_config
from flows.push.reminder_run import run_all
from flows.runtime import engine_for
from warehouse.activation.consent import ConsentEvent, record_consent
from warehouse.activation.segments import members
from warehouse.db import write_transaction
from warehouse.state import now

DEMO_OPT_IN_SOURCE = "demo: seminar sign-up form (generated sample data)"

THANKS_JA = """{{ person.name }} 様

いつもお世話になっております。{{ company }}の{{ owner.name or "営業担当" }}です。
先日はご提案の機会をいただき、誠にありがとうございました。
ご不明な点がございましたら、お気軽にお問い合わせください。
"""
THANKS_EN = """Dear {{ person.name }},

Thank you for the time you gave us to discuss our proposal.
If you have any questions, please let {{ owner.name or "us" }} know.
"""
SEMINAR_JA = """{{ person.name }} 様

{{ company }}より、オンラインセミナー「営業DXの始め方～顧客データ統合～」のご案内です。
{% if org.industry %}{{ org.industry }}の事例も{% endif %}ご紹介いたします。
"""
SEMINAR_HTML = """<p>{{ person.name }} 様</p>
<p>{{ company }}より、オンラインセミナー「<b>営業DXの始め方</b>」のご案内です。</p>"""


def demo_campaign_config(domain: str | None = None, company: str | None = None) -> dict[str, Any]:
    """``segments``, ``campaigns``, ``reminders`` and ``outbound`` for the demo workspace."""
    if domain is None or company is None:
        from flows.demo.world import OWN_DOMAIN, OWN_NAME

        domain, company = domain or OWN_DOMAIN, company or OWN_NAME
    return {
        "segments": {
            "proposal_stage": {
                "all": [
                    {"deal": "open_in_stage", "stage": ["提案", "見積"]},
                    {"activity": "last_meeting", "within_days": 30},
                ]
            },
            "recent_contacts": {"activity": "last_contact", "within_days": 90},
            "dormant": {"activity": "last_contact", "not_within_days": 90},
            "seminar_audience": {
                "all": [{"segment": "recent_contacts"}, {"field": "person.email", "exists": True}]
            },
        },
        "campaigns": {
            "proposal_followup": {
                "segment": "proposal_stage",
                "channel": "outbox",
                "purpose": "sales_followup",
                "steps": [
                    {
                        "ja": {
                            "subject": "ご提案の件のお礼（{{ org.name }}様）",
                            "text": THANKS_JA,
                        },
                        "en": {"subject": "Thank you, {{ person.name }}", "text": THANKS_EN},
                    }
                ],
            },
            "autumn_seminar": {
                "segment": "seminar_audience",
                "channel": "outbox",
                "purpose": "marketing_mail",
                "japanese_charset": "iso-2022-jp",
                "steps": [
                    {
                        "ja": {
                            "subject": "【セミナーのご案内】営業DXの始め方",
                            "text": SEMINAR_JA,
                            "html": SEMINAR_HTML,
                        }
                    }
                ],
            },
        },
        "reminders": {
            "channel": "outbox",
            "rules": {
                "stale_deals": {"type": "deal_idle", "days": 14},
                "follow_up": {"type": "meeting_no_followup", "business_days": 2},
                "closing": {"type": "close_date", "within_days": 7},
            },
        },
        "outbound": {
            "sender": f"{company} 営業部 <sales@{domain}>",
            "postal_address": "東京都千代田区丸の内1-1-1（サンプル）",
            "unsubscribe_address": f"unsubscribe@{domain}",
            "channels": {"outbox": {"type": "outbox", "path": "outbox"}},
            "quiet_hours": None,
            "frequency_cap": {"max": 3, "days": 7},
        },
    }


def _config(workspace_file: Path) -> tuple[PushConfig, Any]:
    ws = load(workspace_file)
    if not ws.campaigns:
        sample = demo_campaign_config(
            domain=(ws.company.domains or ["example.co.jp"])[0], company=ws.company.name
        )
        ws = ws.model_copy(update=sample)
    return push_config(ws), engine_for(ws.warehouse_url)


def _demo_opt_ins(engine: Any, cfg: PushConfig, segment: str) -> int:
    """Every other member of the seminar audience "signed up" (so the plan shows both cases)."""
    at = now()
    with write_transaction(engine) as conn:
        ids = members(conn, cfg.segment(segment), segment_context(cfg, at))
        n = 0
        for pid in ids[::2]:
            n += record_consent(
                conn,
                ConsentEvent(
                    person_id=pid,
                    purpose="marketing_mail",
                    status="opted_in",
                    source=DEMO_OPT_IN_SOURCE,
                    evidence=f"demo sign-up {pid}",
                    at=at,
                ),
            )
    return n


def run_demo_push(workspace_file: Path | str) -> dict[str, Any]:
    """Plan and send the sample campaigns, then run the reminder rules; all into the outbox."""
    cfg, engine = _config(Path(workspace_file))
    summary: dict[str, Any] = {"campaigns": {}, "reminders": {}}
    if "seminar_audience" in cfg.segments:
        summary["opt_ins"] = _demo_opt_ins(engine, cfg, "seminar_audience")
    for name, c in cfg.campaigns.items():
        view = plan(engine, cfg, name)
        channel = build_channel(cfg, c.channel)
        outcomes: dict[str, int] = {}
        try:
            plan_id = approved_plan(engine, cfg, name)
            for batch in open_batches(engine, plan_id, c.batch_size):
                for k, v in send_batch(engine, cfg, name, plan_id, batch, channel).items():
                    outcomes[k] = outcomes.get(k, 0) + v
        finally:
            channel.close()
        summary["campaigns"][name] = {
            "members": view.members,
            "planned": view.counts.get("send", 0),
            "skipped_in_plan": view.counts.get("skip", 0),
            **outcomes,
        }
    if cfg.reminders.rules:
        channel = build_channel(cfg, cfg.reminders.channel)
        try:
            rem = run_all(engine, cfg, channel)
        finally:
            channel.close()
        summary["reminders"] = {
            "opened": rem.opened,
            "resolved": rem.resolved,
            "sent": rem.sent,
            "digests": rem.digests,
        }
    outbox = (
        cfg.root / cfg.outbound.channels["outbox"].path
        if "outbox" in cfg.outbound.channels
        else None
    )
    summary["outbox"] = str(outbox) if outbox else None
    summary["files"] = len(list(outbox.glob("*.eml"))) if outbox and outbox.exists() else 0
    return summary


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """Plain lines for the demo's console output."""
    lines = []
    for name, c in summary["campaigns"].items():
        lines.append(
            f"campaign {name}: {c['members']} in segment, {c['planned']} planned, "
            f"{c.get('sent', 0)} sent, {c['skipped_in_plan'] + c.get('skipped', 0)} skipped"
        )
    rem = summary.get("reminders") or {}
    if rem:
        opened = sum(rem["opened"].values())
        lines.append(
            f"reminders: {opened} opened, {rem['sent']} mailed to their owners "
            f"in {rem.get('digests', 0)} digest(s)"
        )
    lines.append(f"outbox: {summary['files']} .eml files in {summary['outbox']}")
    return lines
