"""HubSpot write side on respx: batch upsert by idProperty, 207 partial failures, tasks with
associations, list membership, dry run, and the round trip through the store."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import Engine, select, update

from connectors.crm import hubspot as hs
from connectors.crm import hubspot_write as hw
from connectors.throttle import RetryPolicy
from flows.engine import run_stream
from flows.sources.crm import hubspot as src
from flows.sources.crm.writeback import desired_from_store
from flows.workspace import Company, Workspace
from tests.support.fakes.fake_hubspot import FakeHubSpot, rate_limited
from warehouse import schema as t


def _api(fake: FakeHubSpot, sleeps: list[float] | None = None) -> hs.HubSpot:
    return hs.HubSpot(
        fake.client(),
        policy=RetryPolicy(sleep=(sleeps if sleeps is not None else []).append, rand=lambda: 0.0),
    )


def _writes(fake: FakeHubSpot) -> list[str]:
    return [
        c
        for c in fake.calls
        if c.endswith(("/batch/upsert", "/batch/update", "/batch/archive")) or "/memberships/" in c
    ]


def test_properties_upsert_by_email_and_a_rerun_is_a_noop() -> None:
    fake = FakeHubSpot()
    fake.add("contacts", {"email": "yamada@abc.co.jp", "kizuna_score": "10"})
    api = _api(fake)
    desired = {"yamada@abc.co.jp": {"kizuna_score": "80"}, "new@abc.co.jp": {"kizuna_score": "55"}}
    res = hw.sync(api, "contacts", "email", desired)
    assert res.counts()["create"] == 1 and res.counts()["update"] == 1
    scores = {
        r["properties"]["email"]: r["properties"]["kizuna_score"]
        for r in fake.objects["contacts"].values()
    }
    assert scores == {"yamada@abc.co.jp": "80", "new@abc.co.jp": "55"}
    fake.calls.clear()
    again = hw.sync(api, "contacts", "email", desired)
    assert again.counts()["unchanged"] == 2 and _writes(fake) == []


def test_a_207_answer_fails_only_the_named_inputs() -> None:
    fake = FakeHubSpot()
    fake.fail_keys = {"b@abc.co.jp"}
    desired = {f"{k}@abc.co.jp": {"firstname": k} for k in "abc"}
    res = hw.sync(_api(fake), "contacts", "email", desired)
    [bad] = res.failed
    assert (
        bad.key == "b@abc.co.jp" and "VALIDATION_ERROR" in (bad.error or "") and not bad.retryable
    )
    assert res.counts()["create"] == 2 and res.attempts == 1


def test_tasks_are_keyed_and_associated_once() -> None:
    fake = FakeHubSpot()
    c = fake.add("contacts", {"email": "yamada@abc.co.jp"})
    api = _api(fake)
    desired = {
        "reminder:7": {
            "hs_task_subject": "見積の送付",
            "hs_timestamp": "2026-03-10T00:00:00Z",
            "hs_task_status": "NOT_STARTED",
        }
    }
    res = hw.tasks(api, desired, {"reminder:7": c["id"]})
    assert res.counts()["create"] == 1
    hw.tasks(api, desired, {"reminder:7": c["id"]})
    assert len(fake.objects["tasks"]) == 1
    [task] = fake.objects["tasks"].values()
    assert fake.assoc[("tasks", task["id"], "contacts")] == [c["id"]]


def test_list_membership_add_rerun_and_mirror() -> None:
    fake = FakeHubSpot()
    ids = [fake.add("contacts", {"email": f"p{i}@abc.co.jp"})["id"] for i in range(3)]
    fake.lists["42"] = {ids[0]}
    api = _api(fake)
    res = hw.list_members(api, "42", [ids[0], ids[1], "999999"])
    assert res.counts()["create"] == 1 and [o.key for o in res.failed] == ["999999"]
    fake.calls.clear()
    assert hw.list_members(api, "42", ids[:2]).counts()["create"] == 0 and _writes(fake) == []
    dry = hw.list_members(api, "42", [ids[2]], "mirror", dry_run=True)
    assert dry.counts() == {
        "would_create": 1,
        "would_update": 0,
        "would_delete": 2,
        "unchanged": 0,
        "skipped": 0,
        "failed": 0,
    }
    assert _writes(fake) == []
    hw.list_members(api, "42", [ids[2]], "mirror")
    assert fake.lists["42"] == {ids[2]}


def test_a_rate_limited_write_is_retried_after_the_wait() -> None:
    fake = FakeHubSpot()
    sleeps: list[float] = []
    api = _api(fake, sleeps)
    fake.scripted = [
        httpx.Response(200, json={"status": "COMPLETE", "results": []}),
        rate_limited("SECONDLY", retry_after="1"),
    ]
    res = hw.sync(api, "contacts", "email", {"a@abc.co.jp": {"firstname": "A"}})
    assert sleeps == [1.0] and res.counts()["create"] == 1


def test_round_trip_contacts_through_the_store_and_back(engine: Engine, tmp_path: Path) -> None:
    fake = FakeHubSpot()
    for i, name in enumerate(["山田", "鈴木"]):
        fake.add("contacts", {"email": f"p{i}@abc.co.jp", "lastname": name, "jobtitle": "課長"})
    ws = Workspace(company=Company(name="自社")).model_copy(update={"path": tmp_path / "k.yaml"})
    cfg = src.Config.model_validate(
        {
            "type": "hubspot",
            "token_env": "T",
            "objects": {"contacts": {}},
            "searches_per_second": 1000,
        }
    )
    spec = src.streams("hubspot", cfg, ws, client=fake.client())[0]
    run_stream(engine, spec, "r1")
    with engine.begin() as conn:
        conn.execute(
            update(t.Person).where(t.Person.primary_email == "p1@abc.co.jp").values(title="部長")
        )
        desired = desired_from_store(conn, "hubspot", "contacts", "person", {"title": "jobtitle"})
    api = _api(fake)
    res = hw.sync(api, "contacts", "hs_object_id", desired, "update_only")
    assert res.counts()["update"] == 1 and res.counts()["unchanged"] == 1
    assert run_stream(engine, spec, "r2").stats.updated == 1
    with engine.connect() as conn:
        titles = dict(conn.execute(select(t.Person.primary_email, t.Person.title)).all())
        again = desired_from_store(conn, "hubspot", "contacts", "person", {"title": "jobtitle"})
    assert titles == {"p0@abc.co.jp": "課長", "p1@abc.co.jp": "部長"}
    assert again == {
        rid: {"jobtitle": r["properties"]["jobtitle"]}
        for rid, r in fake.objects["contacts"].items()
    }
    fake.calls.clear()
    assert hw.sync(api, "contacts", "hs_object_id", again, "update_only").counts()["update"] == 0
    assert _writes(fake) == []
