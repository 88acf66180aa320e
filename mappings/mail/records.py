"""One raw message → every record it yields: its own activity, the meetings a mailed
invitation creates, updates or cancels, and the messages a forward carries.

Mail sources call :func:`parse_mail` and give every record their own source id, so a
message's meetings and forwarded copies share its lineage (and its quarantine entry, when
the message itself is refused). What each derived record means is said in
:mod:`mappings.mail.invite` and :mod:`mappings.mail.forward`.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import tzinfo
from email.message import Message
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from kizuna.errors import BadRecord
from mappings.mail.body import Body
from mappings.mail.forward import MAX_FORWARDED, Inline, inline_forwards, inner_key
from mappings.mail.invite import read_invitations
from mappings.mail.meaning import is_forward_subject
from mappings.mail.message import (
    MailLimits,
    direction_of,
    is_internal,
    own_domain_set,
    parse_parts,
)
from mappings.mail.mime import snippet
from warehouse.records import Activity, Participant

_EXPANDED_KINDS = ("email", "forward", "invitation")
"""Kinds whose attached messages are forwards (a bounce quotes our own mail: not a forward)."""
_NOT_FORWARDS = ("multipart/report", "multipart/digest")
"""A report quotes the mail it is about; a list digest carries the list's posts."""


def parse_mail(
    raw: bytes,
    *,
    own_domains: Collection[str],
    headers_only: bool = False,
    limits: MailLimits | None = None,
    zone: tzinfo | str = "Asia/Tokyo",
) -> list[Activity]:
    """The message's activity first, then the records derived from it.

    ``zone`` reads floating times of a mailed invitation and zone-less dates of an inline
    forward (the workspace's zone). ``BadRecord`` only when the message itself is unusable:
    a calendar part or a forwarded message that cannot be read is noted on the message.
    """
    limits = limits or MailLimits()
    parsed = parse_parts(raw, own_domains=own_domains, headers_only=headers_only, limits=limits)
    act, body = parsed.activity, parsed.body
    if body is None:
        return [act]
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    attrs: dict[str, Any] = dict(act.attributes)
    kind = act.kind
    extra: list[Activity] = []
    if body.calendars:
        inv = read_invitations(
            body.calendars, own_domains=own_domains, sent_at=act.occurred_at, tz=tz
        )
        extra.extend(inv.meetings)
        attrs.update(inv.attributes)
    if (
        kind in _EXPANDED_KINDS
        and not body.digest
        and attrs.get("content_type") not in _NOT_FORWARDS
    ):
        inner = _forwarded(act, body, own_domains, limits, tz, attrs)
        if inner:
            extra.extend(inner)
            attrs["forwarded"] = [a.key for a in inner]
            kind = "forward" if kind == "email" else kind
    if not extra and attrs == act.attributes:
        return [act]
    return [act.model_copy(update={"attributes": attrs, "kind": kind}), *extra]


def _forwarded(
    outer: Activity,
    body: Body,
    own_domains: Collection[str],
    limits: MailLimits,
    tz: tzinfo,
    attrs: dict[str, Any],
) -> list[Activity]:
    out: list[Activity] = []
    errors: list[str] = []
    for part in body.forwarded[:MAX_FORWARDED]:
        got = _attached(outer, part, len(out), own_domains, limits)
        if isinstance(got, str):
            errors.append(got)
        else:
            out.append(got)
    if not body.forwarded and outer.body:
        forward = outer.kind == "forward" or is_forward_subject(outer.subject or "")
        own = own_domain_set(own_domains)
        for found in inline_forwards(outer.body, is_forward=forward, zone=tz):
            inner = _inline(outer, found, len(out), own, limits)
            if inner is not None:
                out.append(inner)
    if errors:
        attrs["forward_error"] = "; ".join(errors)[:500]
    return out


def _attached(
    outer: Activity, part: Message, n: int, own_domains: Collection[str], limits: MailLimits
) -> Activity | str:
    """An attached message (``message/rfc822``) as the forward's n-th inner record, or why not."""
    try:
        data = part.as_bytes()
        inner = parse_parts(data, own_domains=own_domains, limits=limits).activity
    except BadRecord as exc:
        return f"forwarded message {n + 1}: {exc.reason}"
    except Exception as exc:  # regenerating a broken part; the outer mail still lands
        return f"forwarded message {n + 1}: {type(exc).__name__}"
    mid = inner.attributes.get("message_id")
    return inner.model_copy(
        update={
            "key": inner_key(outer.key, n, mid if isinstance(mid, str) else None),
            "source_id": outer.source_id,
            "timeline": False,
            "attributes": {**inner.attributes, "forwarded_in": outer.key},
        }
    )


def _inline(
    outer: Activity, found: Inline, n: int, own: frozenset[str], limits: MailLimits
) -> Activity | None:
    """A message pasted under a forward marker as the forward's n-th inner record."""
    people = [(found.sender, found.sender_name, "from")]
    people += [(a, None, "to") for a in found.to] + [(a, None, "cc") for a in found.cc]
    participants: list[Participant] = []
    seen: set[tuple[str, str]] = set()
    for email, name, role in people[: limits.max_recipients]:
        if (email, role) in seen:
            continue
        seen.add((email, role))
        try:
            participants.append(
                Participant(email=email, name=name, role=role, internal=is_internal(email, own))
            )
        except ValidationError:
            continue
    text = found.text[: limits.max_text_chars] or None
    attributes: dict[str, Any] = {"forwarded_in": outer.key, "inline": True}
    if found.date is None:
        attributes["date_unknown"] = True  # the forward's own date stands in
    key = inner_key(outer.key, n, None)
    try:
        return Activity(
            source_id=outer.source_id,
            key=key,
            kind="email",
            timeline=False,
            occurred_at=found.date or outer.occurred_at,
            direction=direction_of(participants),
            subject=found.subject,
            snippet=snippet(text) if text else None,
            body=text,
            thread_key=key,
            participants=participants,
            attributes=attributes,
        )
    except ValidationError:
        return None
