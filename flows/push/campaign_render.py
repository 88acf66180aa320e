"""Turning a campaign step and a person into a ready-to-send message.

Templates run in Jinja2's ``SandboxedEnvironment`` (an admin's template cannot reach Python
internals) with ``StrictUndefined`` (a misspelt field fails the dry run instead of sending
"Dear ,"). HTML is autoescaped; the text part is not. Every campaign mail gets the footer
特定電子メール法 asks for (who sends it, their address, how to stop it) and a per-recipient
``List-Unsubscribe``.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from functools import lru_cache
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import StrictUndefined, Template
from jinja2.sandbox import SandboxedEnvironment

from connectors.channel import Outgoing
from connectors.mail.compose import Content, Envelope, compose
from flows.push.config import Campaign, MailTemplate, PushConfig, Step
from kizuna.tokens import unsubscribe_address

_TEXT = SandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
)
_HTML = SandboxedEnvironment(undefined=StrictUndefined, autoescape=True)

FOOTER = {
    "ja": (
        "\n\n――――――――――――――――\n"
        "このメールは{company}から{email}様にお送りしています。\n"
        "今後の配信を希望されない場合は、次のアドレスへ空メールをお送りください:\n"
        "{mailto}\n{url_line}"
        "{company}{address_line}\n"
    ),
    "en": (
        "\n\n----------------\n"
        "This mail was sent by {company} to {email}.\n"
        "To stop receiving these mails, send an empty mail to:\n"
        "{mailto}\n{url_line}"
        "{company}{address_line}\n"
    ),
}


@lru_cache(maxsize=256)
def _compile(source: str, html: bool) -> Template:
    return (_HTML if html else _TEXT).from_string(source)


def render(source: str, context: dict[str, Any], *, html: bool = False) -> str:
    return _compile(source, html).render(context)


def language_of(profile: dict[str, Any], default: str) -> str:
    attrs = profile.get("attributes") or {}
    lang = str(attrs.get("language") or attrs.get("locale") or default).lower()
    return "en" if lang.startswith("en") else "ja" if lang.startswith("ja") else default


def context_for(profile: dict[str, Any], company: str) -> dict[str, Any]:
    """The names templates see: ``person``, ``org``, ``owner``, ``company``."""
    family, given = profile.get("family_name"), profile.get("given_name")
    full = profile.get("full_name") or " ".join(x for x in (family, given) if x) or ""
    person = {
        "id": profile.get("id"),
        "family_name": family or "",
        "given_name": given or "",
        "family_name_kana": profile.get("family_name_kana") or "",
        "given_name_kana": profile.get("given_name_kana") or "",
        "name": full,
        "email": profile.get("primary_email") or "",
        "title": profile.get("title") or "",
        "department": profile.get("department") or "",
        "lifecycle_stage": profile.get("lifecycle_stage") or "",
        "attributes": profile.get("attributes") or {},
    }
    org = {
        "name": profile.get("org_name") or "",
        "industry": profile.get("org_industry") or "",
        "address": profile.get("org_address") or "",
        "attributes": profile.get("org_attributes") or {},
    }
    owner = {"name": profile.get("owner_name") or "", "email": profile.get("owner_email") or ""}
    return {"person": person, "org": org, "owner": owner, "company": company}


def pick(step: Step, lang: str) -> tuple[str, MailTemplate]:
    tpl = step.ja if lang == "ja" else step.en
    if tpl is not None:
        return lang, tpl
    other = "en" if lang == "ja" else "ja"
    found = step.en if lang == "ja" else step.ja
    assert found is not None
    return other, found


def message_id(secret: bytes, campaign: str, person_id: int, step: int, domain: str) -> str:
    """The same (campaign, person, step) always gets the same Message-ID."""
    mac = hmac.new(secret, f"mid.{campaign}.{person_id}.{step}".encode(), hashlib.sha256)
    return f"<kz.{campaign}.{step}.{person_id}.{mac.hexdigest()[:12]}@{domain}>"


def build(
    cfg: PushConfig,
    name: str,
    campaign: Campaign,
    step_no: int,
    profile: dict[str, Any],
    address: str,
    secret: bytes,
    now: datetime,
) -> tuple[Outgoing, str | None]:
    """The message for one recipient and step, and a note if its charset had to change."""
    ob = cfg.outbound
    lang, tpl = pick(campaign.steps[step_no - 1], language_of(profile, campaign.default_language))
    ctx = context_for(profile, cfg.company)
    pid = int(profile["id"])
    mailto = unsubscribe_address(ob.unsubscribe_address, secret, pid, campaign.purpose)
    url = None
    if ob.unsubscribe_url:
        sep = "&" if "?" in ob.unsubscribe_url else "?"
        tok = mailto.split("+", 1)[1].split("@", 1)[0]
        url = f"{ob.unsubscribe_url}{sep}t={tok}"
    footer = FOOTER[lang].format(
        company=cfg.company,
        email=address,
        mailto=mailto,
        url_line=f"{url}\n" if url else "",
        address_line=f" {ob.postal_address}" if ob.postal_address else "",
    )
    text = render(tpl.text, ctx) + footer
    html = None
    if tpl.html is not None:
        html = (
            render(tpl.html, ctx, html=True)
            + "<hr><p>"
            + escape(footer.strip()).replace("\n", "<br>")
            + "</p>"
        )
    subject = render(tpl.subject, ctx).replace("\n", " ").strip()
    mid = message_id(secret, name, pid, step_no, ob.domain)
    charset = campaign.japanese_charset if lang == "ja" else "utf-8"
    composed = compose(
        Content(subject=subject, text=text, html=html),
        Envelope(
            sender=campaign.sender or ob.sender,
            to_name=ctx["person"]["name"] or None,
            to_address=address,
            message_id=mid,
            date=now.astimezone(ZoneInfo(cfg.time_zone)),  # "Date: … +0900" for a JST company
            list_unsubscribe_mailto=mailto,
            list_unsubscribe_url=url,
            reply_to=ob.reply_to,
        ),
        charset=charset,
    )
    from email.utils import parseaddr

    item = Outgoing(
        message_id=mid,
        to_address=address,
        data=composed.as_bytes(),
        person_id=pid,
        sender=parseaddr(campaign.sender or ob.sender)[1],
    )
    return item, composed.note
