"""Recognising an unsubscribe request: a mail to the campaign's token address.

Every campaign mail's ``List-Unsubscribe`` points at ``unsubscribe+<person>.<purpose>.<hmac>@…``;
a mail arriving there with a valid token is that recipient's opt-out, whatever its subject or
body (mail clients send an empty one). A wrong or missing token is not an opt-out: the
address is public, and a forged request must not unsubscribe someone else.
"""

from __future__ import annotations

from datetime import datetime
from email.utils import getaddresses

from kizuna.tokens import parse_unsubscribe_address
from mappings.mail.bounce import parse, received_at
from warehouse.activation.consent import ConsentEvent

RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")


def unsubscribes(
    raw: bytes, *, base_address: str, secret: bytes, received: datetime, source: str
) -> list[ConsentEvent]:
    msg = parse(raw)
    values = [str(v) for h in RECIPIENT_HEADERS for v in (msg.get_all(h) or [])]
    # The opt-out takes effect when it reaches us (it must win over anything recorded
    # before); the sender's Date header is kept in the evidence.
    dated = received_at(msg, received).isoformat()
    mid = str(msg.get("Message-ID", "")).strip() or None
    out: list[ConsentEvent] = []
    seen: set[tuple[int, str]] = set()
    for _, addr in getaddresses(values):
        hit = parse_unsubscribe_address(addr, base_address, secret)
        if hit is None or hit in seen or hit[1] not in ("marketing_mail", "sales_followup"):
            continue
        seen.add(hit)
        sender = getaddresses([str(msg.get("From", ""))])
        frm = sender[0][1] if sender else ""
        out.append(
            ConsentEvent(
                person_id=hit[0],
                purpose=hit[1],
                status="opted_out",
                source=source,
                evidence=f"unsubscribe mail {mid or ''} from {frm} to {addr}, dated {dated}",
                at=received,
            )
        )
    return out
