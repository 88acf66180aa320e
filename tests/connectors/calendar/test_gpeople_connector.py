"""People API connector and mapping on People v1's real shapes (offline discovery doc)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from connectors.calendar.gpeople import PeopleCursor, PeopleOptions, people
from connectors.throttle import RetryPolicy, TokenBucket
from flows.engine import run_stream
from flows.sources import gpeople as source_gpeople
from flows.workspace import Company, Workspace
from kizuna.errors import BadRecord, ResyncRequired
from mappings.calendar.gpeople import person_record
from tests.support.fakes.google_fakes import Script, ok, rpc_error, service
from warehouse import schema as t

ACCOUNT = "hanako@ourco.co.jp"
EXPIRED = rpc_error(
    400,
    "FAILED_PRECONDITION",
    "EXPIRED_SYNC_TOKEN",
    "Sync token is expired. Clear local cache and retry call without the sync token.",
)


def opts() -> PeopleOptions:
    return PeopleOptions(
        account=ACCOUNT,
        page_size=2,
        policy=RetryPolicy(max_retries=1, sleep=lambda s: None, rand=lambda: 0.0),
        budget=TokenBucket(100.0, 1000.0, clock=lambda: 0.0, sleep=lambda s: None),
    )


def contact(rid: str, **over: object) -> dict[str, object]:
    p: dict[str, object] = {
        "resourceName": f"people/{rid}",
        "etag": "%EgUBAi43PRoEAQIFByIMR0xxT2ZqSmhVYlU9",
        "metadata": {
            "sources": [
                {"type": "CONTACT", "id": rid, "etag": "#abc", "updateTime": "2026-02-01T00:00:00Z"}
            ],
            "objectType": "PERSON",
        },
        "names": [
            {
                "metadata": {"primary": True, "source": {"type": "CONTACT", "id": rid}},
                "displayName": "田中 太郎",
                "familyName": "田中",
                "givenName": "太郎",
                "phoneticFamilyName": "タナカ",
                "phoneticGivenName": "タロウ",
                "displayNameLastFirst": "田中, 太郎",
                "unstructuredName": "田中 太郎",
            }
        ],
        "emailAddresses": [
            {
                "metadata": {"primary": True},
                "value": "Taro@Customer.co.jp",
                "type": "work",
                "formattedType": "Work",
            }
        ],
        "phoneNumbers": [
            {
                "metadata": {"primary": True},
                "value": "03-1234-5678",
                "canonicalForm": "+81312345678",
                "type": "work",
            },
            {"value": "090-1111-2222", "type": "mobile"},
        ],
        "organizations": [
            {
                "metadata": {"primary": True},
                "name": "株式会社カスタマー",
                "title": "部長",
                "department": "営業部",
            }
        ],
        "birthdays": [
            {"metadata": {"primary": True}, "date": {"year": 1980, "month": 4, "day": 1}}
        ],
    }
    p.update(over)
    return p


def test_connections_full_pass_then_changes_with_deletions() -> None:
    script = Script(
        [
            ok(
                {
                    "connections": [contact("c1"), contact("c2")],
                    "nextPageToken": "PT",
                    "totalPeople": 3,
                    "totalItems": 3,
                }
            ),
            ok(
                {
                    "connections": [contact("c3")],
                    "nextSyncToken": "ST-1",
                    "totalPeople": 3,
                    "totalItems": 3,
                }
            ),
        ]
    )
    pages = list(people(service("people", "v1", script), None, opts(), kind="connections"))
    p0 = script.params(0)
    assert script.paths()[0] == "/v1/people/me/connections"
    assert p0["requestSyncToken"] == "true" and "syncToken" not in p0
    assert p0["personFields"].startswith("names,emailAddresses")
    assert script.params(1)["pageToken"] == "PT"
    assert [p.cursor for p in pages] == [
        PeopleCursor(page_token="PT"),
        PeopleCursor(sync_token="ST-1"),
    ]
    assert [p.snapshot_end for p in pages] == [False, True]

    gone = {
        "resourceName": "people/c2",
        "etag": "%x",
        "metadata": {"deleted": True, "objectType": "PERSON"},
    }
    script = Script([ok({"connections": [gone, contact("c4")], "nextSyncToken": "ST-2"})])
    pages = list(
        people(service("people", "v1", script), pages[-1].cursor, opts(), kind="connections")
    )
    assert script.params(0)["syncToken"] == "ST-1"
    assert pages[0].deleted == ["people/c2"]
    assert [x["resourceName"] for x in pages[0].records] == ["people/c4"]


def test_other_contacts_and_expired_token() -> None:
    other = {
        "resourceName": "otherContacts/c77",
        "etag": "%e",
        "metadata": {"sources": [{"type": "OTHER_CONTACT", "id": "77"}], "objectType": "PERSON"},
        "names": [{"displayName": "Suzuki Ichiro", "metadata": {"primary": True}}],
        "emailAddresses": [{"value": "ichiro@partner.co.jp", "metadata": {"primary": True}}],
    }
    script = Script([ok({"otherContacts": [other], "nextSyncToken": "O1", "totalSize": 1})])
    pages = list(people(service("people", "v1", script), None, opts(), kind="other"))
    assert script.paths()[0] == "/v1/otherContacts"
    assert script.params(0)["readMask"] == "names,emailAddresses,phoneNumbers,metadata"
    assert pages[0].records == [other]

    script = Script([EXPIRED])
    with pytest.raises(ResyncRequired):
        list(
            people(
                service("people", "v1", script),
                PeopleCursor(sync_token="OLD"),
                opts(),
                kind="other",
            )
        )


def test_mapping_kana_phones_company_and_staff() -> None:
    (p,) = person_record(contact("c1"), own_domains=["ourco.co.jp"])
    assert (p.family_name, p.given_name, p.family_name_kana, p.given_name_kana) == (
        "田中",
        "太郎",
        "タナカ",
        "タロウ",
    )
    assert p.emails == ["taro@customer.co.jp"]
    assert p.phones == ["+81312345678", "+819011112222"]
    assert p.organization is not None and p.organization.name == "株式会社カスタマー"
    assert (p.title, p.department, p.birth_date) == ("部長", "営業部", date(1980, 4, 1))

    staff = contact("c9", emailAddresses=[{"value": "jiro@ourco.co.jp"}])
    assert person_record(staff, own_domains=["ourco.co.jp"]) == []
    with pytest.raises(BadRecord):
        person_record({"resourceName": "people/c0", "metadata": {}}, own_domains=[])


def test_contacts_sync_through_the_engine(engine: Engine, tmp_path: Path) -> None:
    ws = Workspace(
        company=Company(name="アワコ", domains=["ourco.co.jp"]), path=tmp_path / "k.yaml"
    )
    cfg = source_gpeople.Config(
        accounts=[ACCOUNT], service_account_key_env="UNUSED", other_contacts=False
    )
    script = Script([ok({"connections": [contact("c1")], "nextSyncToken": "S"})])
    (spec,) = source_gpeople.streams(
        "contacts",
        cfg,
        ws,
        service_for=lambda _a: service("people", "v1", script),
        options={"policy": RetryPolicy(sleep=lambda s: None), "budget": TokenBucket(1e3, 1e3)},
    )
    assert spec.stream == f"{ACCOUNT}/contacts"
    run_stream(engine, spec, "r1")
    with engine.connect() as conn:
        name = conn.execute(select(t.Person.full_name)).scalar_one()
        org = conn.execute(select(t.Organization.name, t.Organization.domain)).one()
    assert name == "田中 太郎"
    assert tuple(org) == ("株式会社カスタマー", "customer.co.jp")
