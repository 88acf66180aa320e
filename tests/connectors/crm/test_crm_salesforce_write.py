"""Salesforce write side on the local HTTPS fake: idempotent Tasks, campaign members, computed
fields, partial failures, Bulk 2.0 ingest, and the round trip through the store."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from simple_salesforce.api import Salesforce
from sqlalchemy import Engine, select, update

from connectors.crm import salesforce as sf
from connectors.crm import salesforce_write as sw
from flows.engine import run_stream
from flows.sources.crm import salesforce as src
from flows.sources.crm.writeback import desired_from_store
from flows.workspace import Company, Workspace
from kizuna.errors import QuotaError
from tests.support.fakes.fake_salesforce import FakeSalesforce
from tests.support.fakes.fake_salesforce_org import Org
from warehouse import schema as t

KEY = "Kizuna_Key__c"
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _composite(org: Org) -> list[str]:
    return [
        r
        for r in org.requests
        if r.startswith(("PATCH composite", "POST composite", "DELETE composite"))
    ]


def _tasks(org: Org) -> list[dict[str, Any]]:
    return [r for r in org.records.get("Task", []) if not r.get("IsDeleted")]


def test_follow_up_tasks_are_upserted_by_key_and_a_rerun_creates_no_duplicate() -> None:
    with FakeSalesforce() as fake:
        client = fake.client()
        desired = {
            f"reminder:{i}": sw.task(
                f"フォローアップ {i}", who_id=f"003{i:015d}", due=date(2026, 3, 10)
            )
            for i in range(3)
        }
        res = sw.sync(client, "Task", KEY, desired)
        assert res.counts()["create"] == 3
        assert len(_tasks(fake.org)) == 3
        fake.org.requests.clear()
        again = sw.sync(client, "Task", KEY, desired)
        assert again.counts()["unchanged"] == 3 and _composite(fake.org) == []
        # A write replayed blindly (a crash after sending, before recording) is still an upsert.
        plan = sw.w.plan("t", desired, {}, "upsert")
        sw.execute(client, "Task", KEY, plan)
        assert len(_tasks(fake.org)) == 3


def test_partial_failure_reports_per_record_and_retries_only_the_failed_one() -> None:
    with FakeSalesforce() as fake:
        fake.org.fail_ids = {"reminder:1"}
        desired = {f"reminder:{i}": sw.task(f"件名{i}") for i in range(3)}
        res = sw.sync(fake.client(), "Task", KEY, desired)
        assert not res.failed and res.attempts == 2
        assert len(_tasks(fake.org)) == 3
        upserts = [r for r in fake.org.requests if r.startswith("PATCH composite/sobjects/Task")]
        assert len(upserts) == 2  # the retry carried only the failed record


def test_a_record_deleted_before_its_update_counts_as_done() -> None:
    with FakeSalesforce() as fake:
        client = fake.client()
        fake.org.add("Contact", {"LastName": "山田"}, T0)
        cid = fake.org.records["Contact"][0]["Id"]
        fake.org.records["Contact"][0]["IsDeleted"] = True  # deleted between read and write
        plan = sw.w.plan("c", {cid: {"Title": "部長"}}, {cid: sw.w.Current(cid, {})}, "update_only")
        res = sw.w.run(plan, lambda p: sw.execute(client, "Contact", "Id", p))
        assert res.counts()["update"] == 1  # ENTITY_IS_DELETED: nothing left to update


def test_campaign_members_are_added_once_and_mirror_removes_the_rest() -> None:
    with FakeSalesforce() as fake:
        client = fake.client()
        camp = "701000000000000001"
        c1, c2, lead = "003000000000000011", "003000000000000012", "00Q000000000000013"
        fake.org.add("CampaignMember", {"CampaignId": camp, "ContactId": c1, "Status": "Sent"}, T0)
        res = sw.campaign_members(client, camp, [c1, c2, lead])
        assert res.counts()["create"] == 2 and res.counts()["unchanged"] == 1
        members = [r for r in fake.org.records["CampaignMember"] if not r.get("IsDeleted")]
        assert sorted(str(r.get("ContactId") or r.get("LeadId")) for r in members) == sorted(
            [c1, c2, lead]
        )
        fake.org.requests.clear()
        assert sw.campaign_members(client, camp, [c1, c2, lead]).counts()["create"] == 0
        assert _composite(fake.org) == []
        dry = sw.campaign_members(client, camp, [c2], "mirror", dry_run=True)
        assert dry.counts()["would_delete"] == 2 and _composite(fake.org) == []
        gone = sw.campaign_members(client, camp, [c2], "mirror")
        assert gone.counts()["delete"] == 2
        live = [r for r in fake.org.records["CampaignMember"] if not r.get("IsDeleted")]
        assert [r["ContactId"] for r in live] == [c2]


def test_salesforce_refusing_a_duplicate_member_counts_as_done() -> None:
    with FakeSalesforce() as fake:
        client = fake.client()
        camp, c1 = "701000000000000001", "003000000000000011"
        fake.org.add("CampaignMember", {"CampaignId": camp, "ContactId": c1}, T0)
        out = sw._call(
            client,
            [sw.w.WriteOp("create", c1)],
            "composite/sobjects",
            "POST",
            json={
                "allOrNone": False,
                "records": [
                    {"attributes": {"type": "CampaignMember"}, "CampaignId": camp, "ContactId": c1}
                ],
            },
        )
        assert out[0].ok
        assert len(fake.org.records["CampaignMember"]) == 1


def test_large_plans_go_through_a_bulk_ingest_job_with_per_record_failures() -> None:
    with FakeSalesforce() as fake:
        fake.org.fail_ids = {"k2"}
        desired = {f"k{i}": {"Subject": f"s{i}", "Status": "Completed"} for i in range(4)}
        res = sw.sync(fake.client(), "Task", KEY, desired, bulk_threshold=2, bulk_wait=0.1)
        assert any(r == "POST jobs/ingest" for r in fake.org.requests)
        assert not res.failed and res.attempts == 2  # the lock failure was retried alone
        assert len(_tasks(fake.org)) == 4


@responses.activate
def test_a_spent_daily_quota_stops_the_write_instead_of_marking_records_failed() -> None:
    import re

    responses.get(re.compile(r".*/query/.*"), json={"totalSize": 0, "done": True, "records": []})
    responses.patch(
        re.compile(r".*/composite/sobjects/Task/Kizuna_Key__c"),
        status=403,
        json=[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
    )
    client = Salesforce(
        instance_url="https://na1.my.salesforce.com", session_id="t", version=sf.API_VERSION
    )
    with pytest.raises(QuotaError):
        sw.sync(client, "Task", KEY, {"k": {"Subject": "x"}})
    body = json.loads(responses.calls[1].request.body or b"{}")
    assert body["allOrNone"] is False and body["records"][0][KEY] == "k"


def test_round_trip_contacts_through_the_store_and_back(engine: Engine, tmp_path: Path) -> None:
    with FakeSalesforce() as fake:
        for i, name in enumerate(["山田", "鈴木"]):
            fake.org.add(
                "Contact",
                {
                    "LastName": name,
                    "Email": f"p{i}@abc.co.jp",
                    "Title": "課長",
                    "Account": {"Name": "株式会社ABC"},
                },
                T0,
            )
        ws = Workspace(company=Company(name="自社")).model_copy(
            update={"path": tmp_path / "k.yaml"}
        )
        cfg = src.Config.model_validate(
            {
                "type": "salesforce",
                "auth": {"client_id": "x", "refresh_token_env": "RT"},
                "objects": {"Contact": {"delete_log": False}},
            }
        )
        spec = src.streams("sfdc", cfg, ws, client=fake.client())[0]
        run_stream(engine, spec, "r1")
        with engine.begin() as conn:
            conn.execute(
                update(t.Person)
                .where(t.Person.primary_email == "p1@abc.co.jp")
                .values(title="部長")
            )
            desired = desired_from_store(conn, "sfdc", "contact", "person", {"title": "Title"})
        client = fake.client()
        res = sw.sync(client, "Contact", "Id", desired, "update_only")
        assert res.counts()["update"] == 1 and res.counts()["unchanged"] == 1
        res2 = run_stream(engine, spec, "r2")
        assert res2.stats.updated == 1
        with engine.connect() as conn:
            titles = dict(conn.execute(select(t.Person.primary_email, t.Person.title)).all())
            again = desired_from_store(conn, "sfdc", "contact", "person", {"title": "Title"})
        assert titles == {"p0@abc.co.jp": "課長", "p1@abc.co.jp": "部長"}
        assert again == {r["Id"]: {"Title": r["Title"]} for r in fake.org.records["Contact"]}
        fake.org.requests.clear()
        assert sw.sync(client, "Contact", "Id", again, "update_only").counts()["update"] == 0
        assert _composite(fake.org) == []
