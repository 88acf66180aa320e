"""CRM mappings (pure): field maps and custom fields, REST and Bulk shapes, owners, activities,
and workspace configs that name the field to fix."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from connectors.crm.salesforce_values import flatten, parse_csv_page
from flows.config import load
from kizuna.errors import BadRecord, ConfigError
from mappings.crm import hubspot as hm
from mappings.crm import kintone as km
from mappings.crm import salesforce as sm
from mappings.crm.common import MapOptions
from warehouse import records as r

OPTS = MapOptions(
    source="sfdc",
    field_maps={
        "Contact": {
            "family_name_kana": "LastNameKana__c",
            "given_name_kana": "FirstNameKana__c",
            "attributes.score": "Score__c",
        },
        "Account": {"corporate_number": "CorporateNumber__c"},
    },
    internal_domains=("jisha.co.jp",),
)


def test_salesforce_custom_fields_reach_the_unified_fields_and_attributes() -> None:
    raw = flatten(
        {
            "attributes": {"type": "Contact"},
            "Id": "003A",
            "LastName": "山田",
            "FirstName": "太郎",
            "LastNameKana__c": "ヤマダ",
            "FirstNameKana__c": "タロウ",
            "Score__c": 87.5,
            "Email": "Taro.Yamada@ABC.co.jp",
            "Phone": "03-1234-5678",
            "MobilePhone": "090-1234-5678",
            "Account": {
                "attributes": {},
                "Name": "株式会社ABC",
                "Website": "https://www.abc.co.jp",
            },
            "Owner": {"attributes": {}, "Email": "sato@jisha.co.jp"},
        }
    )
    [p] = sm.contact(raw, OPTS)
    assert isinstance(p, r.Person)
    assert (p.family_name_kana, p.given_name_kana) == ("ヤマダ", "タロウ")
    assert p.emails == ["taro.yamada@abc.co.jp"]
    assert p.phones == ["+81312345678", "+819012345678"]
    assert p.attributes == {"score": 87.5}
    assert p.organization == r.OrgRef(name="株式会社ABC", domain="abc.co.jp")
    assert p.owner_email == "sato@jisha.co.jp" and p.lifecycle_stage == "contact"


def test_bulk_csv_text_and_rest_json_map_to_the_same_records() -> None:
    rest = {
        "Id": "006A",
        "Name": "更改",
        "StageName": "Closed Won",
        "Amount": 1500000.0,
        "Probability": 100.0,
        "CloseDate": "2026-03-31",
        "IsClosed": True,
        "IsWon": True,
        "Account.Name": "株式会社ABC",
        "Account.Website": None,
        "Owner.Email": "sato@jisha.co.jp",
        "LastStageChangeDate": "2026-03-20T01:02:03.000+0000",
    }
    text = (
        "Id,Name,StageName,Amount,Probability,CloseDate,IsClosed,IsWon,Account.Name,"
        "Account.Website,Owner.Email,LastStageChangeDate\n"
        "006A,更改,Closed Won,1500000.0,100.0,2026-03-31,true,true,株式会社ABC,,"
        "sato@jisha.co.jp,2026-03-20T01:02:03.000+0000\n"
    )
    [bulk] = parse_csv_page(text)
    assert sm.opportunity(rest, OPTS) == sm.opportunity(bulk, OPTS)
    [d] = sm.opportunity(bulk, OPTS)
    assert isinstance(d, r.Deal)
    assert (d.status, d.amount, d.changed_at) == (
        "won",
        1500000,
        datetime(2026, 3, 20, 1, 2, 3, tzinfo=UTC),
    )


def test_salesforce_tasks_and_events_become_activities_linked_to_deals() -> None:
    [call] = sm.task(
        {
            "Id": "00TA",
            "Subject": "電話",
            "TaskSubtype": "Call",
            "ActivityDate": "2026-03-05",
            "WhatId": "006000000000001",
            "Who.Email": "yamada@abc.co.jp",
            "Owner.Email": "sato@jisha.co.jp",
            "Status": "Completed",
        },
        OPTS,
    )
    assert isinstance(call, r.Activity)
    assert (call.kind, call.key, call.deal_source_id) == (
        "call",
        "sfdc:Task:00TA",
        "006000000000001",
    )
    assert call.occurred_at.utcoffset() is not None and call.occurred_at.hour == 0
    assert {(p.email, p.internal) for p in call.participants} == {
        ("yamada@abc.co.jp", False),
        ("sato@jisha.co.jp", True),
    }
    [meeting] = sm.event(
        {
            "Id": "00UA",
            "Subject": "定例",
            "StartDateTime": "2026-03-05T01:00:00.000+0000",
            "EndDateTime": "2026-03-05T02:00:00.000+0000",
            "WhatId": "001000000000001",
        },
        OPTS,
    )
    assert isinstance(meeting, r.Activity)
    assert meeting.kind == "meeting" and meeting.deal_source_id is None


def test_records_without_what_identifies_them_are_bad_records() -> None:
    with pytest.raises(BadRecord, match="Name"):
        sm.account({"Id": "001A", "Name": None}, OPTS)
    with pytest.raises(BadRecord, match="Amount"):
        sm.opportunity({"Id": "006A", "Name": "x", "Amount": "tbd"}, OPTS)
    with pytest.raises(BadRecord, match="dealname"):
        hm.deal({"id": "1", "properties": {}}, OPTS)


def test_hubspot_email_direction_and_kintone_user_codes() -> None:
    [mail] = hm.MAPPERS["emails"](
        {
            "id": "9",
            "properties": {
                "hs_timestamp": "2026-03-01T00:00:00Z",
                "hs_email_subject": "見積",
                "hs_email_direction": "INCOMING_EMAIL",
            },
        },
        OPTS,
    )
    assert isinstance(mail, r.Activity) and mail.direction == "inbound"
    app = km.AppMapping(
        entity="person",
        field_map={"family_name": "氏名", "email": "メール", "owner_email": "担当者"},
        user_domain="jisha.co.jp",
    )
    [p] = km.map_record(
        {
            "$id": {"type": "__ID__", "value": "4"},
            "氏名": {"type": "SINGLE_LINE_TEXT", "value": "田中"},
            "メール": {"type": "LINK", "value": "tanaka@xyz.co.jp"},
            "担当者": {"type": "USER_SELECT", "value": [{"code": "sato", "name": "佐藤"}]},
        },
        app,
        OPTS,
    )
    assert isinstance(p, r.Person)
    assert p.owner_email == "sato@jisha.co.jp" and p.emails == ["tanaka@xyz.co.jp"]


def _write(tmp: Path, sources: dict[str, object]) -> Path:
    f = tmp / "kizuna.yaml"
    f.write_text(
        yaml.safe_dump({"company": {"name": "自社"}, "sources": sources}, allow_unicode=True),
        encoding="utf-8",
    )
    return f


def test_a_workspace_with_all_three_crms_loads(tmp_path: Path) -> None:
    ws = load(
        _write(
            tmp_path,
            {
                "sfdc": {
                    "type": "salesforce",
                    "auth": {
                        "method": "jwt",
                        "client_id": "3MVG9",
                        "username": "i@x.jp",
                        "private_key_env": "SF_KEY",
                    },
                    "objects": {
                        "Account": {"field_map": {"corporate_number": "CorporateNumber__c"}}
                    },
                },
                "hubspot": {"type": "hubspot", "token_env": "HUBSPOT_TOKEN"},
                "kintone": {
                    "type": "kintone",
                    "base_url": "https://example.cybozu.com",
                    "apps": {
                        "customers": {
                            "app": 12,
                            "token_env": "KT",
                            "entity": "organization",
                            "field_map": {"name": "会社名"},
                        }
                    },
                },
            },
        )
    )
    assert set(ws.sources) == {"sfdc", "hubspot", "kintone"}


def test_bad_crm_settings_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load(
            _write(
                tmp_path,
                {"sfdc": {"type": "salesforce", "auth": {"client_id": "x"}, "quota_share": 1.5}},
            )
        )
    assert "sources.sfdc.quota_share" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        load(
            _write(
                tmp_path,
                {
                    "kt": {
                        "type": "kintone",
                        "base_url": "https://x.cybozu.com",
                        "apps": {
                            "a": {"app": 1, "token_env": "T", "entity": "lead", "field_map": {}}
                        },
                    }
                },
            )
        )
    assert "sources.kt.apps.a.entity" in str(exc.value)
