"""The privacy filter every mail source applies after mapping (see ``mappings.mail.privacy``).

The only impure part is finding the known customers, needed for ``capture: known_customers``;
it is read from the warehouse once per stream, on first use, so other capture modes never
touch the database here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flows.workspace import Workspace
from mappings.mail.privacy import KnownCustomers, PrivacyConfig, apply_privacy
from warehouse.records import Activity

PrivacyFilter = Callable[[Activity], Activity | None]


def privacy_filter(
    cfg: PrivacyConfig,
    ws: Workspace,
    *,
    now: datetime,
    known: Callable[[], KnownCustomers] | None = None,
) -> PrivacyFilter:
    """``activity -> activity | None`` for one stream; ``known`` overrides the warehouse."""
    cache: list[KnownCustomers] = []

    def load_known() -> KnownCustomers:
        if not cache:
            cache.append(known() if known is not None else _from_warehouse(ws))
        return cache[0]

    def keep(activity: Activity) -> Activity | None:
        k = load_known() if cfg.capture == "known_customers" else None
        return apply_privacy(activity, cfg, now=now, known=k)

    return keep


def _from_warehouse(ws: Workspace) -> KnownCustomers:
    from flows.runtime import engine_for
    from warehouse.identity.known_customers import known_customer_contacts

    with engine_for(ws.warehouse_url).connect() as conn:
        emails, domains = known_customer_contacts(conn)
    return KnownCustomers.of(emails, domains)
