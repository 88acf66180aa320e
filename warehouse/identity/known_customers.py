"""Who counts as a known customer for mail capture: people and companies from real sources.

Mail and calendar sync create a minimal person for every outside address they meet (lineage
``address:<email>``); those must not make a stranger "known", or capture mode
``known_customers`` would admit everyone it has ever seen. Known means: a live person row
that some source (a CRM, an export) produced itself, and the company domains of organizations
that a source produced or that such a person belongs to.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from warehouse import schema as t


def known_customer_contacts(conn: Connection) -> tuple[frozenset[str], frozenset[str]]:
    """``(emails, domains)`` of known customers; domains exclude free-mail providers."""
    sr = t.SourceRecord
    real_person = (
        select(sr.entity_id)
        .where(
            sr.entity == "person",
            sr.deleted_at.is_(None),
            ~sr.source_id.startswith("address:"),
        )
        .scalar_subquery()
    )
    p, pe, o = t.Person, t.PersonEmail, t.Organization
    emails = conn.execute(
        select(pe.email)
        .join(p, p.id == pe.person_id)
        .where(p.deleted_at.is_(None), pe.person_id.in_(real_person))
    ).scalars()
    org_of_people = (
        select(p.organization_id)
        .where(p.id.in_(real_person), p.organization_id.is_not(None))
        .scalar_subquery()
    )
    real_org = (
        select(sr.entity_id)
        .where(
            sr.entity == "organization",
            sr.deleted_at.is_(None),
            ~sr.source_id.startswith("ref:"),  # a reference counts through its person
        )
        .scalar_subquery()
    )
    domains = conn.execute(
        select(o.domain).where(
            o.deleted_at.is_(None),
            o.domain.is_not(None),
            o.id.in_(real_org) | o.id.in_(org_of_people),
        )
    ).scalars()
    return frozenset(emails), frozenset(d for d in domains if d)
