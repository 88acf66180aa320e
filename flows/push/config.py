"""The push side of the workspace file: ``segments:``, ``campaigns:``, ``reminders:``, ``outbound:``.

Validated here, once, into typed settings; every mistake is a ``ConfigError`` naming the
file, the field and the fix. Secrets (the SMTP password, the unsubscribe-token key) are
read from the environment variables the file names, never from the file.
"""

from __future__ import annotations

import hashlib
import imaplib
import json
import re
from datetime import time
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.mail.smtp_send import SmtpSettings
from flows.secrets import require_tls_host, resolve_secret, signing_key
from flows.workspace import Workspace, config_error
from kizuna.errors import ConfigError
from warehouse.activation.grammar import Cond, parse_segments

ASCII_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,60}$")


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SentFolder(_M):
    """An IMAP Sent folder where submitted mail shows up: crash recovery looks there."""

    host: str
    port: int = 993
    security: Literal["ssl", "starttls", "none"] = "ssl"
    username: str
    password_env: str
    mailbox: str = "Sent"

    def connect(self) -> imaplib.IMAP4:
        password = resolve_secret(
            self.password_env, field="outbound.channels.*.sent_folder.password_env"
        ).get_secret_value()
        if self.security == "ssl":
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(self.host, self.port, timeout=30)
        else:
            conn = imaplib.IMAP4(self.host, self.port, timeout=30)
            if self.security == "starttls":
                conn.starttls()
        conn.login(self.username, password)
        return conn


class ChannelConfig(_M):
    type: Literal["outbox", "smtp", "slack", "gmail", "m365"]
    path: str = "outbox"
    """outbox: the folder the .eml files go to (relative to the workspace file)."""
    host: str | None = None
    port: int = 587
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    rate_per_minute: float | None = Field(default=None, gt=0)
    sent_folder: SentFolder | None = None
    """smtp: where to look for a Message-ID after a crash; without it an in-doubt send
    follows the campaign's ``in_doubt`` policy."""
    webhook_env: str | None = None
    """slack: the environment variable holding the incoming-webhook URL (a secret)."""
    account: str | None = None
    """gmail, m365: the mailbox that sends (its Sent label answers "was it sent?")."""
    service_account_key_env: str | None = None
    """gmail: secret with a service account key (domain-wide delegation, gmail.send +
    gmail.readonly)."""
    oauth_token_env: str | None = None
    """gmail: secret with the account's OAuth authorized-user JSON (instead of a key)."""
    tenant_id: str | None = None
    """m365: the Entra ID tenant of the app registration (``Mail.Send`` permission)."""
    client_id: str | None = None
    client_secret_env: str | None = None

    @model_validator(mode="after")
    def _smtp_needs_host(self) -> ChannelConfig:
        if self.type == "smtp" and not self.host:
            raise ValueError("an smtp channel needs `host:`")
        if self.type == "smtp" and self.host:
            require_tls_host(self.host, self.security)
        if self.sent_folder is not None:
            require_tls_host(self.sent_folder.host, self.sent_folder.security)
        if self.type == "slack" and not self.webhook_env:
            raise ValueError("a slack channel needs `webhook_env:` (the variable holding its URL)")
        if self.type == "m365":
            missing = [
                f
                for f in ("account", "tenant_id", "client_id", "client_secret_env")
                if not getattr(self, f)
            ]
            if missing:
                raise ValueError(f"an m365 channel needs `{'`, `'.join(missing)}`")
        if self.type == "gmail" and not self.account:
            raise ValueError("a gmail channel needs `account:` (the mailbox that sends)")
        if self.type == "gmail" and not (self.service_account_key_env or self.oauth_token_env):
            raise ValueError(
                "a gmail channel needs `service_account_key_env:` or `oauth_token_env:`"
            )
        return self

    def secret(self, env: str | None, field: str) -> SecretStr:
        """A secret from the environment variable the file names; ConfigError when unset."""
        if not env:
            raise ConfigError(
                "no secret named", field=f"outbound.channels.*.{field}", fix="name its variable"
            )
        return resolve_secret(env, field=f"outbound.channels.*.{field}")

    def smtp(self) -> SmtpSettings:
        password = None
        if self.password_env:
            password = resolve_secret(self.password_env, field="outbound.channels.*.password_env")
        assert self.host is not None
        return SmtpSettings(
            host=self.host,
            port=self.port,
            security=self.security,
            username=self.username,
            password=password,
        )


class QuietHours(_M):
    start: time = time(21, 0)
    end: time = time(8, 0)


class FrequencyCap(_M):
    max: int = Field(ge=1)
    days: int = Field(ge=1, le=365)


class Outbound(_M):
    sender: str = "Kizuna <noreply@example.co.jp>"
    reply_to: str | None = None
    postal_address: str = ""
    """特定電子メール法: the sender's address must appear in every marketing mail."""
    unsubscribe_address: str = "unsubscribe@example.co.jp"
    unsubscribe_url: str | None = None
    """An HTTPS endpoint of your own; enables RFC 8058 one-click (List-Unsubscribe-Post)."""
    unsubscribe_secret_env: str = "KIZUNA_UNSUBSCRIBE_SECRET"
    message_id_domain: str | None = None
    channels: dict[str, Any] = Field(default_factory=lambda: {"outbox": {"type": "outbox"}})
    """Name → channel settings, each validated by its type's own model (``push_config``)."""
    frequency_cap: FrequencyCap | None = None
    quiet_hours: QuietHours | None = Field(default_factory=QuietHours)
    feedback: list[str] = Field(default_factory=list)
    """Mail folders (Maildir, mbox or a folder of .eml) where bounces and unsubscribes land."""

    @property
    def domain(self) -> str:
        from email.utils import parseaddr

        return self.message_id_domain or parseaddr(self.sender)[1].partition("@")[2] or "kizuna"


class MailTemplate(_M):
    subject: str = Field(min_length=1)
    text: str = Field(min_length=1)
    html: str | None = None


class Step(_M):
    after_days: int = Field(default=0, ge=0, le=3650)
    """Days after the previous step was sent (ignored for the first step)."""
    ja: MailTemplate | None = None
    en: MailTemplate | None = None

    @model_validator(mode="after")
    def _some_language(self) -> Step:
        if self.ja is None and self.en is None:
            raise ValueError("a step needs a `ja:` and/or `en:` template")
        return self


def _cron(value: str | None) -> str | None:
    from croniter import croniter

    if value is not None and not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a cron expression; e.g. '0 10 * * 1' (Mondays 10:00)")
    return value


class Campaign(_M):
    segment: str
    channel: str = "outbox"
    purpose: Literal["marketing_mail", "sales_followup"] = "marketing_mail"
    steps: list[Step] = Field(min_length=1, max_length=20)
    audience: Literal["all", "new"] = "all"
    """new: only people who entered the segment after the campaign's first dry run
    (a welcome series); all: every member (each still gets each step once)."""
    default_language: Literal["ja", "en"] = "ja"
    japanese_charset: Literal["utf-8", "iso-2022-jp"] = "utf-8"
    approval: Literal["required", "auto"] = "required"
    """required: a real run sends only what an earlier dry run planned."""
    in_doubt: Literal["resend", "hold"] = "hold"
    """When a send is in doubt (a crash, or a link that broke after SMTP DATA) and the channel
    cannot say whether it went out: hold it for a person (`kizuna campaigns status`), or send
    again (at least once: a duplicate is possible)."""
    schedule: str | None = None
    """Cron (company time zone) for `kizuna serve`; none = only when run by hand."""
    sender: str | None = None
    batch_size: int = Field(default=500, ge=1, le=10000)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, v: str | None) -> str | None:
        return _cron(v)


RuleType = Literal["deal_idle", "meeting_no_followup", "close_date", "key_account_quiet"]


class Rule(_M):
    type: RuleType
    days: int | None = Field(default=None, ge=1, le=3650)
    business_days: int | None = Field(default=None, ge=1, le=60)
    within_days: int | None = Field(default=None, ge=0, le=365)
    attribute: str | None = None
    values: list[str] = Field(default_factory=list)
    lookback_days: int = Field(default=60, ge=1, le=3650)

    @model_validator(mode="after")
    def _params(self) -> Rule:
        need = {
            "deal_idle": "days",
            "meeting_no_followup": "business_days",
            "close_date": "within_days",
            "key_account_quiet": "days",
        }[self.type]
        if getattr(self, need) is None:
            raise ValueError(f"rule type {self.type} needs `{need}:`")
        if self.type == "key_account_quiet" and not self.attribute:
            raise ValueError("key_account_quiet needs `attribute:` (and `values:`)")
        return self


class Reminders(_M):
    channel: str = "outbox"
    language: Literal["ja", "en"] = "ja"
    digest: Literal["daily", "every_run"] = "daily"
    """daily: at most one digest per rep per day (new reminders wait for tomorrow's);
    every_run: one digest per rep per run."""
    schedule: str | None = None
    rules: dict[str, Rule] = Field(default_factory=dict)


class PushConfig(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    file: Path
    root: Path
    company: str
    time_zone: str
    outbound: Outbound
    segments: dict[str, Cond]
    segment_source: dict[str, Any]
    campaigns: dict[str, Campaign]
    reminders: Reminders

    def campaign(self, name: str) -> Campaign:
        if name not in self.campaigns:
            known = ", ".join(sorted(self.campaigns)) or "none configured"
            raise ConfigError(
                f"no campaign named {name!r} (campaigns: {known})",
                file=str(self.file),
                field="campaigns",
            )
        return self.campaigns[name]

    def segment(self, name: str) -> Cond:
        if name not in self.segments:
            known = ", ".join(sorted(self.segments)) or "none configured"
            raise ConfigError(
                f"no segment named {name!r} (segments: {known})",
                file=str(self.file),
                field="segments",
            )
        return self.segments[name]

    def campaign_hash(self, name: str) -> str:
        """Changes when the campaign or its segment changes: a plan is only valid for one."""
        c = self.campaign(name)
        blob = json.dumps(
            [c.model_dump(mode="json"), self.segment_source.get(c.segment)],
            sort_keys=True,
            ensure_ascii=False,
            default=str,
        )
        return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()

    def unsubscribe_secret(self) -> bytes:
        """The key unsubscribe tokens and Message-IDs are signed with (``flows.secrets``):
        from the environment or a Prefect Secret block, else a key file beside the warehouse
        (one machine), created once and atomically."""
        return signing_key(
            self.outbound.unsubscribe_secret_env,
            self.root / ".kizuna" / "unsubscribe.key",
            file=str(self.file),
            field="outbound.unsubscribe_secret_env",
        )

    def channel_config(self, name: str, field: str) -> Any:
        if name not in self.outbound.channels:
            known = ", ".join(sorted(self.outbound.channels))
            raise ConfigError(
                f"no channel named {name!r}",
                file=str(self.file),
                field=field,
                fix=f"use one of: {known}, or add it under outbound.channels",
            )
        return self.outbound.channels[name]


def _validate(model: type[BaseModel], data: Any, file: Path, prefix: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, file, prefix=prefix) from None


def _channels(raw: dict[str, Any], file: Path) -> dict[str, BaseModel]:
    """Each channel's settings, validated by the model of its (built-in or plugin) type."""
    from flows.push.channels import channel_type

    out: dict[str, BaseModel] = {}
    for name, section in raw.items():
        where = f"outbound.channels.{name}"
        kind = section.get("type") if isinstance(section, dict) else None
        if kind is None:
            raise ConfigError(
                "a channel needs `type:`", file=str(file), field=where, fix="add `type: outbox`"
            )
        model = channel_type(str(kind), file=str(file), field=f"{where}.type").Config
        out[str(name)] = _validate(model, section, file, where)
    return out


def push_config(ws: Workspace) -> PushConfig:
    from flows.push.channels import channel_type

    file = ws.path
    outbound = _validate(Outbound, ws.outbound, file, "outbound")
    outbound = outbound.model_copy(update={"channels": _channels(outbound.channels, file)})
    segments = parse_segments(ws.segments, file=str(file))
    campaigns: dict[str, Campaign] = {}
    for name, raw in ws.campaigns.items():
        if not ASCII_NAME.match(str(name)):
            raise ConfigError(
                f"campaign name {name!r} is not allowed",
                file=str(file),
                field="campaigns",
                fix="use ASCII letters, digits, '_' or '-' (it goes into Message-IDs)",
            )
        c = _validate(Campaign, raw, file, f"campaigns.{name}")
        if c.segment not in segments:
            raise ConfigError(
                f"unknown segment {c.segment!r}",
                file=str(file),
                field=f"campaigns.{name}.segment",
                fix=f"use one of: {', '.join(sorted(segments)) or 'define one under segments:'}",
            )
        campaigns[str(name)] = c
    reminders = _validate(Reminders, ws.reminders, file, "reminders")
    cfg = PushConfig(
        file=file,
        root=ws.root,
        company=ws.company.name,
        time_zone=ws.company.time_zone,
        outbound=outbound,
        segments=segments,
        segment_source=dict(ws.segments),
        campaigns=campaigns,
        reminders=reminders,
    )
    for name, c in campaigns.items():
        cc = cfg.channel_config(c.channel, f"campaigns.{name}.channel")
        if not channel_type(cc.type).carries_mail:
            raise ConfigError(
                f"channel {c.channel!r} is a {cc.type} channel, which carries reminders, not mail",
                file=str(file),
                field=f"campaigns.{name}.channel",
                fix="send campaigns through an outbox, smtp, gmail or m365 channel",
            )
    if reminders.rules:
        cfg.channel_config(reminders.channel, "reminders.channel")
    return cfg
