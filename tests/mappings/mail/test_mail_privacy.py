"""Privacy controls for mail capture: each rule on real parsed mail, and known customers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine

from flows.sources.mail_privacy import privacy_filter
from flows.workspace import Company, Workspace
from mappings.mail.message import parse_message
from mappings.mail.privacy import KnownCustomers, PrivacyConfig, apply_privacy, exclusion_reason
from tests.support.servers import message
from warehouse import records as rec
from warehouse.identity.known_customers import known_customer_contacts
from warehouse.records import Activity
from warehouse.state import StreamKey
from warehouse.write.store import apply_page

OWN = ["kizuna.example"]
NOW = datetime(2026, 11, 20, tzinfo=UTC)


def mail(sender: str, to: str, date: str = "Mon, 16 Nov 2026 10:00:00 +0900") -> Activity:
    return parse_message(message("ご提案", sender=sender, to=to, date=date), own_domains=OWN)


EXTERNAL = ("tanaka@customer.co.jp", "sato@kizuna.example")
INTERNAL = ("suzuki@kizuna.example", "sato@kizuna.example")


def test_default_keeps_external_mail_and_drops_internal_only() -> None:
    cfg = PrivacyConfig()
    assert exclusion_reason(mail(*EXTERNAL), cfg, now=NOW) is None
    assert exclusion_reason(mail(*INTERNAL), cfg, now=NOW) == "internal only"


def test_capture_all_can_keep_internal_mail_when_asked() -> None:
    assert exclusion_reason(mail(*INTERNAL), PrivacyConfig(capture="all"), now=NOW) == (
        "internal only"
    )
    cfg = PrivacyConfig(capture="all", exclude_internal=False)
    assert exclusion_reason(mail(*INTERNAL), cfg, now=NOW) is None


def test_excluded_addresses_and_domains_win_over_everything() -> None:
    cfg = PrivacyConfig(capture="all", exclude_addresses=["Tanaka@Customer.co.jp"])
    assert exclusion_reason(mail(*EXTERNAL), cfg, now=NOW) == "has an excluded address"
    by_domain = PrivacyConfig(exclude_domains=["@customer.co.jp", "gmail.com"])
    assert exclusion_reason(mail(*EXTERNAL), by_domain, now=NOW) == "has an excluded address"
    sub = mail("a@osaka.customer.co.jp", "sato@kizuna.example")
    assert exclusion_reason(sub, by_domain, now=NOW) == "has an excluded address"
    other = mail("a@notcustomer.co.jp", "sato@kizuna.example")
    assert exclusion_reason(other, by_domain, now=NOW) is None
    private = mail("friend@gmail.com", "sato@kizuna.example")
    assert exclusion_reason(private, by_domain, now=NOW) == "has an excluded address"


def test_known_customers_mode_needs_a_known_address_or_company_domain() -> None:
    cfg = PrivacyConfig(capture="known_customers")
    known = KnownCustomers.of(emails=["yamada@other.co.jp"], domains=["customer.co.jp"])
    assert exclusion_reason(mail(*EXTERNAL), cfg, now=NOW, known=known) is None
    stranger = mail("x@stranger.co.jp", "sato@kizuna.example")
    assert exclusion_reason(stranger, cfg, now=NOW, known=known) == (
        "no known customer among the participants"
    )
    by_address = mail("Yamada@other.co.jp", "sato@kizuna.example")
    assert exclusion_reason(by_address, cfg, now=NOW, known=known) is None
    assert exclusion_reason(mail(*EXTERNAL), cfg, now=NOW) is not None  # nobody known yet


def test_retention_window_skips_old_mail() -> None:
    cfg = PrivacyConfig(retention_days=30)
    old = mail(*EXTERNAL, date="Mon, 05 Oct 2026 10:00:00 +0900")
    assert exclusion_reason(old, cfg, now=NOW) == "older than the retention window"
    assert exclusion_reason(mail(*EXTERNAL), cfg, now=NOW) is None


def test_headers_only_drops_the_snippet() -> None:
    act = mail(*EXTERNAL)
    assert act.snippet
    kept = apply_privacy(act, PrivacyConfig(headers_only=True), now=NOW)
    assert kept is not None and kept.snippet is None and kept.key == act.key
    assert apply_privacy(mail(*INTERNAL), PrivacyConfig(headers_only=True), now=NOW) is None


def test_bad_config_is_rejected_with_the_value() -> None:
    with pytest.raises(ValidationError, match="not an email address"):
        PrivacyConfig(exclude_addresses=["hr-at-example"])
    with pytest.raises(ValidationError, match="is not a domain"):
        PrivacyConfig(exclude_domains=["localhost"])
    with pytest.raises(ValidationError):
        PrivacyConfig(capture="everything")  # type: ignore[arg-type]


def test_known_customers_come_from_real_sources_not_from_mail_addresses(engine: Engine) -> None:
    crm = StreamKey("crm", "contacts")
    mailbox = StreamKey("imap", "INBOX")
    with engine.begin() as conn:
        apply_page(
            conn,
            crm,
            records=[
                rec.Person(
                    source_id="c1",
                    emails=["tanaka@customer.co.jp"],
                    organization=rec.OrgRef(name="顧客株式会社"),
                    payload_hash="h",
                ),
                rec.Person(source_id="c2", emails=["me@gmail.com"], payload_hash="h"),
                rec.Organization(source_id="o1", name="取引先", domain="partner.co.jp"),
            ],
        )
        act = mail("stranger@nowhere.co.jp", "sato@kizuna.example").model_copy(
            update={"payload_hash": "h", "source_id": "INBOX:1:1"}
        )
        apply_page(conn, mailbox, records=[act])
    with engine.connect() as conn:
        emails, domains = known_customer_contacts(conn)
    assert emails == {"tanaka@customer.co.jp", "me@gmail.com"}
    assert domains == {"customer.co.jp", "partner.co.jp"}  # no gmail.com, no nowhere.co.jp

    ws = Workspace(company=Company(name="絆", domains=OWN))
    ws = ws.model_copy(
        update={"warehouse": ws.warehouse.model_copy(update={"url": str(engine.url)})}
    )
    keep = privacy_filter(
        PrivacyConfig(capture="known_customers"),
        ws,
        now=NOW,
        known=lambda: KnownCustomers.of(emails, domains),
    )
    assert keep(mail("suzuki@customer.co.jp", "sato@kizuna.example")) is not None
    assert keep(mail("stranger@nowhere.co.jp", "sato@kizuna.example")) is None
