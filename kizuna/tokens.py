"""Per-recipient unsubscribe tokens: an HMAC over (person, purpose), so a reply to the
unsubscribe address proves which recipient and purpose it is about and cannot be forged
for someone else. Pure functions shared by the composer (send side) and the unsubscribe
mapping (receive side).
"""

from __future__ import annotations

import hashlib
import hmac
import re

TOKEN_LEN = 16
_LOCAL = re.compile(
    r"^(?P<base>[^+@]+)\+(?P<pid>\d{1,12})\.(?P<purpose>[a-z_]{1,30})\.(?P<tok>[0-9a-f]{16})$"
)


def token(secret: bytes, person_id: int, purpose: str) -> str:
    mac = hmac.new(secret, f"{person_id}.{purpose}".encode(), hashlib.sha256)
    return mac.hexdigest()[:TOKEN_LEN]


def unsubscribe_address(base: str, secret: bytes, person_id: int, purpose: str) -> str:
    """``unsubscribe@x`` → ``unsubscribe+<person>.<purpose>.<token>@x`` (plus addressing)."""
    local, _, domain = base.partition("@")
    return f"{local}+{person_id}.{purpose}.{token(secret, person_id, purpose)}@{domain}"


def parse_unsubscribe_address(address: str, base: str, secret: bytes) -> tuple[int, str] | None:
    """(person id, purpose) if ``address`` is a genuine token address for ``base``."""
    local, _, domain = address.strip().lower().partition("@")
    b_local, _, b_domain = base.strip().lower().partition("@")
    if domain != b_domain:
        return None
    m = _LOCAL.match(local)
    if m is None or m["base"] != b_local:
        return None
    pid, purpose = int(m["pid"]), m["purpose"]
    if not hmac.compare_digest(m["tok"], token(secret, pid, purpose)):
        return None
    return pid, purpose


_TOKEN = re.compile(r"^(?P<pid>\d{1,12})\.(?P<purpose>[a-z_]{1,30})\.(?P<tok>[0-9a-f]{16})$")


def parse_token(secret: bytes, value: str) -> tuple[int, str] | None:
    """(person id, purpose) from ``<person>.<purpose>.<token>`` (the one-click URL's ``t``),
    if the token is genuine."""
    m = _TOKEN.match(value.strip()[:80])
    if m is None:
        return None
    pid, purpose = int(m["pid"]), m["purpose"]
    if not hmac.compare_digest(m["tok"], token(secret, pid, purpose)):
        return None
    return pid, purpose
