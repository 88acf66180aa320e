"""What an admin lets a mail connector keep: one config, pure decisions over an activity.

Every mail source (mail files, IMAP, Gmail, Graph) embeds :class:`PrivacyConfig` as its
``privacy:`` block and runs each mapped activity through :func:`apply_privacy` before it
reaches the warehouse. A mail that is not captured is simply not stored (no activity, no
participants, no snippet); ``headers_only`` also tells the connector not to download bodies.

Rules, in order (the first that excludes wins):

1. ``retention_days``: mail older than that is skipped;
2. ``exclude_addresses`` / ``exclude_domains``: mail with any such participant is skipped
   (a domain also covers its subdomains);
3. ``exclude_internal``: mail whose participants are all staff (own domains) is skipped;
4. ``capture``: ``all`` keeps the rest; ``external`` keeps mail with at least one outside
   participant; ``known_customers`` keeps mail with at least one participant who is a known
   customer (an address, or an address at a company domain, the warehouse already knows
   from a CRM or an export — see :class:`KnownCustomers`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from warehouse.identity.keys.normalize import normalize_domain, normalize_email
from warehouse.records import Activity

Capture = Literal["all", "external", "known_customers"]


class PrivacyConfig(BaseModel):
    """The ``privacy:`` block of a mail source in kizuna.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    capture: Capture = "external"
    """``all`` | ``external`` (mail with someone outside the company) | ``known_customers``."""
    exclude_internal: bool = True
    """Skip mail between staff only (own domains)."""
    exclude_addresses: list[str] = Field(default_factory=list)
    """Mail with any of these addresses is never stored (e.g. hr@, a lawyer, a private one)."""
    exclude_domains: list[str] = Field(default_factory=list)
    """Mail with anyone at these domains (or their subdomains) is never stored."""
    headers_only: bool = False
    """Store who/when/subject only: bodies are not downloaded and no snippet is kept."""
    retention_days: int | None = Field(default=None, ge=1, le=36_500)
    """Mail older than this many days is skipped."""

    @field_validator("exclude_addresses")
    @classmethod
    def _addresses(cls, v: list[str]) -> list[str]:
        out = []
        for a in v:
            n = normalize_email(a)
            if n is None:
                raise ValueError(f"{a!r} is not an email address")
            out.append(n)
        return out

    @field_validator("exclude_domains")
    @classmethod
    def _domains(cls, v: list[str]) -> list[str]:
        out = []
        for d in v:
            # Not normalize_domain: that drops free-mail domains, which are fair to exclude.
            n = d.strip().lstrip("@").lower().rstrip(".")
            if not n or "." not in n or "@" in n:
                raise ValueError(f"{d!r} is not a domain; write it like 'example.co.jp'")
            out.append(n)
        return out


@dataclass(frozen=True)
class KnownCustomers:
    """Addresses and company domains the warehouse knows as customers (not staff)."""

    emails: frozenset[str] = frozenset()
    domains: frozenset[str] = frozenset()

    @classmethod
    def of(cls, emails: Iterable[str] = (), domains: Iterable[str] = ()) -> KnownCustomers:
        return cls(
            frozenset(e for e in (normalize_email(x) for x in emails) if e),
            frozenset(d for d in (normalize_domain(x) for x in domains) if d),
        )

    def knows(self, email: str) -> bool:
        return email in self.emails or _in_domains(_domain(email), self.domains)


def exclusion_reason(
    activity: Activity,
    cfg: PrivacyConfig,
    *,
    now: datetime,
    known: KnownCustomers | None = None,
) -> str | None:
    """Why this mail must not be stored, or None to keep it."""
    if cfg.retention_days is not None and activity.occurred_at < now - timedelta(
        days=cfg.retention_days
    ):
        return "older than the retention window"
    excluded_addr = set(cfg.exclude_addresses)
    excluded_dom = frozenset(cfg.exclude_domains)
    for p in activity.participants:
        if p.email in excluded_addr or _in_domains(_domain(p.email), excluded_dom):
            return "has an excluded address"
    external = [p for p in activity.participants if not p.internal]
    if cfg.exclude_internal and activity.participants and not external:
        return "internal only"
    if cfg.capture == "external" and not external:
        return "no outside participant"
    if cfg.capture == "known_customers":
        k = known or KnownCustomers()
        if not any(k.knows(p.email) for p in external):
            return "no known customer among the participants"
    return None


def apply_privacy(
    activity: Activity,
    cfg: PrivacyConfig,
    *,
    now: datetime,
    known: KnownCustomers | None = None,
) -> Activity | None:
    """The activity as it may be stored (no snippet in headers-only mode), or None."""
    if exclusion_reason(activity, cfg, now=now, known=known) is not None:
        return None
    if cfg.headers_only and (activity.snippet is not None or activity.body is not None):
        return activity.model_copy(update={"snippet": None, "body": None})
    return activity


def _domain(email: str) -> str:
    return email.rpartition("@")[2].lower()


def _in_domains(domain: str, domains: frozenset[str]) -> bool:
    if not domain:
        return False
    parts = domain.split(".")
    return any(".".join(parts[i:]) in domains for i in range(len(parts) - 1))
