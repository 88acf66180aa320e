"""A Gmail message resource → an email activity, through the one mail parser.

``format=raw`` carries the RFC 5322 bytes (base64url): they go to
:func:`mappings.mail.message.parse_message` unchanged, so a mail seen through Gmail and through IMAP
gets the same key (its Message-ID), participants, thread and direction. ``format=metadata``
(headers-only mode) carries the header fields as JSON; they are written back as a header block
and parsed the same way, so nothing about identity depends on the format.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection
from typing import Any

from connectors.mail.gmail import volatile_label
from kizuna.errors import BadRecord
from mappings.mail.message import parse_message
from mappings.mail.records import parse_mail
from warehouse.records import Activity


def header_block(headers: list[dict[str, Any]]) -> bytes:
    """``[{"name": ..., "value": ...}]`` (Gmail ``payload.headers``, Graph
    ``internetMessageHeaders``) as an RFC 5322 header block; values may be UTF-8."""
    lines = []
    for h in headers:
        name = str(h.get("name") or "").strip()
        if not name or ":" in name:
            continue
        value = " ".join(str(h.get("value") or "").split())
        lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def raw_bytes(message: dict[str, Any]) -> bytes:
    data = message.get("raw")
    if not isinstance(data, str):
        raise BadRecord("Gmail message has no raw content", source_id=message.get("id"))
    try:
        return base64.b64decode(data + "=" * (-len(data) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise BadRecord("Gmail raw content is not base64url", source_id=message.get("id")) from None


def message_activity(
    message: dict[str, Any], *, own_domains: Collection[str], headers_only: bool = False
) -> Activity:
    """One Gmail message (``format=raw`` or ``metadata``) as an email activity."""
    return message_records(message, own_domains=own_domains, headers_only=headers_only)[0]


def message_records(
    message: dict[str, Any],
    *,
    own_domains: Collection[str],
    headers_only: bool = False,
    zone: str = "Asia/Tokyo",
) -> list[Activity]:
    """One Gmail message as its activity, then what a raw message yields besides (the meetings
    of a mailed invitation, a forward's inner messages: :mod:`mappings.mail.records`)."""
    mid = str(message.get("id") or "")
    if not mid:
        raise BadRecord("Gmail message without an id")
    if "raw" in message and not headers_only:
        acts = parse_mail(raw_bytes(message), own_domains=own_domains, zone=zone)
    else:
        headers = (message.get("payload") or {}).get("headers")
        if "raw" in message:  # raw fetched but headers-only asked: keep only the header block
            head = raw_bytes(message).split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
            block = head + b"\r\n\r\n"
        elif isinstance(headers, list):
            block = header_block(headers)
        else:
            raise BadRecord("Gmail message has neither raw content nor headers", source_id=mid)
        acts = [parse_message(block, own_domains=own_domains, headers_only=True)]
    attributes = dict(acts[0].attributes)
    attributes["gmail"] = {
        "thread_id": message.get("threadId"),
        "labels": sorted(str(x) for x in message.get("labelIds") or [] if not volatile_label(x)),
    }
    first = acts[0].model_copy(update={"source_id": mid, "attributes": attributes})
    return [first, *(a.model_copy(update={"source_id": mid}) for a in acts[1:])]
