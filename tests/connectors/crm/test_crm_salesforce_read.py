"""Salesforce read side: single calls with `responses`, multi-call flows on a local HTTPS fake."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from pydantic import SecretStr
from simple_salesforce.api import Salesforce
from sqlalchemy import Engine, select

from connectors.crm import salesforce as sf
from connectors.crm import salesforce_auth as sfa
from flows.engine import run_stream
from flows.sources.crm import salesforce as src
from flows.workspace import Company, Workspace
from kizuna.errors import AuthError, QuotaError, ResyncRequired
from tests.support.fakes.fake_salesforce import FakeSalesforce
from tests.support.fakes.fake_salesforce_org import Org, stamp
from warehouse import schema as t
from warehouse.state import load_cursor, save_cursor

BASE = "https://na1.my.salesforce.com"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def _client() -> Salesforce:
    return Salesforce(instance_url=BASE, session_id="tok", version=sf.API_VERSION)


def _ws(tmp: Path) -> Workspace:
    ws = Workspace(company=Company(name="自社", domains=["jisha.co.jp"]))
    return ws.model_copy(update={"path": tmp / "kizuna.yaml"})


def _cfg(**objects: Any) -> src.Config:
    return src.Config.model_validate(
        {
            "type": "salesforce",
            "auth": {"method": "oauth_refresh", "client_id": "x", "refresh_token_env": "RT"},
            "objects": objects or {"Account": {}},
            "quota_share": 0.9,
        }
    )


def _spec(ws: Workspace, cfg: src.Config, client: Salesforce, obj: str = "account") -> Any:
    return next(s for s in src.streams("sfdc", cfg, ws, client=client) if s.stream == obj)


# -- single calls (responses) ------------------------------------------------------------------


@responses.activate
def test_rest_rows_are_flattened_and_recycle_bin_rows_become_tombstones() -> None:
    responses.get(
        re.compile(r".*/queryAll/\?q=SELECT.*"),
        json={
            "totalSize": 2,
            "done": True,
            "records": [
                {
                    "attributes": {"type": "Account", "url": "/x"},
                    "Id": "001A",
                    "Name": "株式会社ABC",
                    "Owner": {"attributes": {"type": "User"}, "Email": "sato@jisha.co.jp"},
                    "SystemModstamp": "2026-03-01T00:00:00.000+0000",
                    "IsDeleted": False,
                },
                {
                    "attributes": {"type": "Account"},
                    "Id": "001B",
                    "Name": "Gone",
                    "Owner": None,
                    "SystemModstamp": "2026-03-01T00:00:01.000+0000",
                    "IsDeleted": True,
                },
            ],
        },
        headers={"Sforce-Limit-Info": "api-usage=10/15000"},
    )
    spec = sf.ObjectSpec("Account", delete_log=False)
    pages = list(sf.read_object(_client(), spec, None))
    assert pages[-1].records == [
        {
            "Id": "001A",
            "Name": "株式会社ABC",
            "Owner.Email": "sato@jisha.co.jp",
            "SystemModstamp": "2026-03-01T00:00:00.000+0000",
            "IsDeleted": False,
        }
    ]
    assert pages[-1].deleted == ["001B"]
    assert pages[-1].snapshot_end  # a first sync is a full pass
    assert pages[-1].cursor.hw == "2026-03-01T00:00:01.000+0000"
    q = responses.calls[0].request.url or ""
    assert "ORDER+BY+SystemModstamp%2C+Id" in q or "ORDER%20BY" in q or "ORDER+BY" in q


@responses.activate
def test_request_limit_exceeded_is_a_quota_error() -> None:
    responses.get(
        re.compile(r".*/queryAll/.*"),
        status=403,
        json=[{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
    )
    with pytest.raises(QuotaError, match="REQUEST_LIMIT_EXCEEDED"):
        list(sf.read_object(_client(), sf.ObjectSpec("Account"), None))


@responses.activate
def test_incremental_query_uses_a_closed_boundary_on_systemmodstamp() -> None:
    responses.get(re.compile(r".*/queryAll/.*"), json={"totalSize": 0, "done": True, "records": []})
    cur = sf.SalesforceCursor(hw="2026-03-01T09:00:00.000+0000")
    list(sf.read_object(_client(), sf.ObjectSpec("Contact", delete_log=False), cur))
    url = responses.calls[0].request.url or ""
    assert "SystemModstamp+%3E%3D+2026-03-01T09%3A00%3A00.000Z" in url


@responses.activate
def test_refresh_token_login_and_a_revoked_token_never_leaks() -> None:
    responses.post(
        "https://login.salesforce.com/services/oauth2/token",
        json={"access_token": "00Dx!abc", "instance_url": BASE, "token_type": "Bearer"},
    )
    auth = sfa.SalesforceAuth(client_id="cid", refresh_token_env="RT")
    client = sfa.connect(auth, lambda env, f: SecretStr("very-secret-refresh"))
    assert client.session_id == "00Dx!abc"
    assert client.base_url.startswith(BASE)
    body = responses.calls[0].request.body or ""
    assert "grant_type=refresh_token" in str(body)
    responses.replace(
        responses.POST,
        "https://login.salesforce.com/services/oauth2/token",
        status=400,
        json={"error": "invalid_grant", "error_description": "expired access/refresh token"},
    )
    with pytest.raises(AuthError) as exc:
        sfa.connect(auth, lambda env, f: SecretStr("very-secret-refresh"))
    assert "very-secret-refresh" not in str(exc.value)


def test_auth_settings_name_what_is_missing() -> None:
    with pytest.raises(AuthError, match="username"):
        sfa.connect(sfa.SalesforceAuth(method="jwt", client_id="c"), lambda e, f: SecretStr("k"))


# -- multi-call flows (local HTTPS fake) --------------------------------------------------------


def _accounts(org: Org, n: int, start: datetime = T0) -> None:
    for i in range(n):
        org.add(
            "Account",
            {
                "Name": f"株式会社テスト{i}",
                "Website": f"https://www.test{i}.co.jp",
                "Rank__c": "A" if i % 2 else "B",
                "Owner": {"Email": "sato@jisha.co.jp"},
            },
            start + timedelta(seconds=i),
        )


def _orgs(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(t.Organization.name, t.Organization.attributes, t.Organization.deleted_at)
        ).all()
    return {n: (a, d) for n, a, d in rows}


def test_paging_by_next_records_url_then_incremental_end_to_end(
    engine: Engine, tmp_path: Path
) -> None:
    with FakeSalesforce() as fake:
        _accounts(fake.org, 5)
        cfg = _cfg(Account={"field_map": {"attributes.rank": "Rank__c"}})
        spec = _spec(_ws(tmp_path), cfg, fake.client())
        res = run_stream(engine, spec, "r1")
        assert (res.pages, res.read, res.stats.inserted) == (3, 5, 5)
        assert sum(1 for r in fake.org.requests if re.match(r"GET queryAll/01g", r)) == 2
        assert len(_orgs(engine)) == 5
        with engine.connect() as conn:
            owner = conn.execute(select(t.StaffUser.email)).scalars().all()
        assert owner == ["sato@jisha.co.jp"]

        # One account changes; the next run reads from the mark and applies only that one.
        acc = fake.org.records["Account"][3]
        acc["Name"] = "株式会社テスト3改"
        acc["SystemModstamp"] = stamp(T0 + timedelta(hours=1))
        fake.org.requests.clear()
        res2 = run_stream(engine, spec, "r2")
        assert res2.stats.updated == 1
        assert "株式会社テスト3改" in _orgs(engine)
        assert not res2.resynced


def test_quota_share_stops_after_a_committed_page_and_the_next_run_resumes(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeSalesforce() as fake:
        _accounts(fake.org, 6)
        fake.org.api_total = 100
        fake.org.api_used = 88  # the first answer reports 89/100, over the 0.9 share on page 2
        spec = _spec(_ws(tmp_path), _cfg(), fake.client())
        with caplog.at_level(logging.WARNING, logger="connectors.crm.salesforce"):
            res = run_stream(engine, spec, "r1")
        assert res.read == 4  # two pages committed, then a clean stop
        assert "daily API quota" in caplog.text
        assert len(_orgs(engine)) == 4
        fake.org.api_used = 0  # a new day
        res2 = run_stream(engine, spec, "r2")
        assert len(_orgs(engine)) == 6
        assert res2.stats.inserted == 2


def test_quota_403_mid_stream_fails_the_run_and_keeps_committed_pages(
    engine: Engine, tmp_path: Path
) -> None:
    with FakeSalesforce() as fake:
        _accounts(fake.org, 6)
        fake.org.exhausted_after = 2  # someone else spends the quota: the third call is refused
        spec = _spec(_ws(tmp_path), _cfg(), fake.client())
        with pytest.raises(QuotaError):
            run_stream(engine, spec, "r1")
        assert len(_orgs(engine)) == 4


def test_bulk2_query_job_pages_by_sforce_locator(tmp_path: Path) -> None:
    with FakeSalesforce() as fake:
        _accounts(fake.org, 5)
        fake.org.records["Account"][4]["IsDeleted"] = True
        spec = sf.ObjectSpec("Account", api="bulk2", delete_log=False)
        pages = list(sf.read_object(fake.client(), spec, None, bulk_wait=0.1, bulk_page=2))
    jobs = [r for r in fake.org.requests if r.startswith("POST jobs/query")]
    results = [r for r in fake.org.requests if r.endswith("/results")]
    assert len(jobs) == 1 and len(results) == 3
    assert [len(p.records) for p in pages] == [2, 2, 0]
    assert pages[-1].deleted == [fake.org.records["Account"][4]["Id"]]
    # The mark stays put until the unordered job's last page, then jumps to the newest row.
    assert pages[0].cursor.hw is None
    assert pages[-1].cursor.hw == fake.org.records["Account"][4]["SystemModstamp"]
    assert pages[0].records[0]["Owner.Email"] == "sato@jisha.co.jp"
    assert pages[-1].snapshot_end


def test_auto_api_counts_first_and_picks_bulk_for_large_objects(tmp_path: Path) -> None:
    with FakeSalesforce() as fake:
        _accounts(fake.org, 3)
        spec = sf.ObjectSpec("Account", api="auto", bulk_threshold=2, delete_log=False)
        pages = list(sf.read_object(fake.client(), spec, None, bulk_wait=0.1))
    assert fake.org.requests[0].startswith("GET query/")
    assert any(r.startswith("POST jobs/query") for r in fake.org.requests)
    assert sum(len(p.records) for p in pages) == 3


def test_delete_log_tombstones_then_a_purged_window_forces_a_resync(
    engine: Engine, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    with FakeSalesforce() as fake:
        _accounts(fake.org, 3, start=now - timedelta(days=2))
        spec = _spec(_ws(tmp_path), _cfg(), fake.client())
        run_stream(engine, spec, "r1")
        gone = fake.org.records["Account"].pop(0)  # purged from the recycle bin
        fake.org.deleted_log["Account"] = [
            {"id": gone["Id"], "deletedDate": stamp(now + timedelta(seconds=30))}
        ]
        # The delete log needs a window of at least a minute past our last look.
        clock_spec = _spec(_ws(tmp_path), _cfg(), fake.client())
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(sf, "_now", lambda: now + timedelta(minutes=5))
            res = run_stream(engine, clock_spec, "r2")
        assert res.stats.deleted == 1
        assert _orgs(engine)[gone["Name"]][1] is not None

        # The log was purged past our last look: resync, and the snapshot retires what vanished.
        second = fake.org.records["Account"].pop(0)
        fake.org.earliest_deleted["Account"] = stamp(now + timedelta(minutes=10))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(sf, "_now", lambda: now + timedelta(minutes=20))
            res = run_stream(engine, clock_spec, "r3")
        assert res.resynced
        orgs = _orgs(engine)
        assert orgs[second["Name"]][1] is not None
        assert orgs[fake.org.records["Account"][0]["Name"]][1] is None


def test_a_last_delete_check_older_than_15_days_resyncs_before_reading() -> None:
    old = sf.SalesforceCursor(
        hw="2026-01-01T00:00:00.000+0000", deleted_checked="2026-01-01T00:00:00.000Z"
    )
    it = sf.read_object(
        _client(), sf.ObjectSpec("Account"), old, clock=lambda: datetime(2026, 2, 1, tzinfo=UTC)
    )
    with pytest.raises(ResyncRequired):
        next(it)


def test_opportunity_stage_history_sets_changed_at_and_keeps_every_step(
    engine: Engine, tmp_path: Path
) -> None:
    with FakeSalesforce() as fake:
        opp = fake.org.add(
            "Opportunity",
            {
                "Name": "基幹システム刷新",
                "StageName": "Negotiation",
                "Amount": 1200000.0,
                "Probability": 60.0,
                "CloseDate": "2026-06-30",
                "IsClosed": False,
                "IsWon": False,
                "Account": {"Name": "株式会社ABC", "Website": "abc.co.jp"},
                "Owner": {"Email": "sato@jisha.co.jp"},
            },
            T0,
        )
        for i, stage in enumerate(["Prospecting", "Proposal", "Proposal", "Negotiation"]):
            fake.org.add(
                "OpportunityHistory",
                {
                    "OpportunityId": opp["Id"],
                    "StageName": stage,
                    "CreatedDate": stamp(T0 - timedelta(days=10 - i)),
                },
                T0,
            )
        spec = _spec(_ws(tmp_path), _cfg(Opportunity={}), fake.client(), "opportunity")
        run_stream(engine, spec, "r1")
    with engine.connect() as conn:
        deal = conn.execute(select(t.Deal)).one()
        hist = conn.execute(select(t.DealStageHistory.stage, t.DealStageHistory.entered_at)).one()
    assert deal.stage == "Negotiation" and deal.amount == 1200000
    assert [s["stage"] for s in deal.attributes["stage_history"]] == [
        "Prospecting",
        "Proposal",
        "Negotiation",
    ]
    assert hist[0] == "Negotiation"
    assert hist[1].replace(tzinfo=UTC) == T0 - timedelta(days=7)


@responses.activate
def test_jwt_bearer_and_password_logins_build_a_client() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    responses.post(
        "https://login.salesforce.com/services/oauth2/token",
        json={"access_token": "00Djwt!x", "instance_url": BASE},
    )
    auth = sfa.SalesforceAuth(
        method="jwt", client_id="cid", username="int@jisha.co.jp", private_key_env="K"
    )
    client = sfa.connect(auth, lambda env, f: SecretStr(pem))
    assert client.session_id == "00Djwt!x"
    assert "jwt-bearer" in str(responses.calls[0].request.body)

    responses.post(
        re.compile(r"https://login\.salesforce\.com/services/Soap/u/.*"),
        body=(
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f"<serverUrl>{BASE}/services/Soap/u/61.0/00D</serverUrl>"
            "<sessionId>00Dpw!y</sessionId></result></loginResponse></soapenv:Body></soapenv:Envelope>"
        ),
    )
    pw = sfa.SalesforceAuth(
        method="password", username="int@jisha.co.jp", password_env="P", security_token_env="T"
    )
    client = sfa.connect(pw, lambda env, f: SecretStr("s3cret"))
    assert client.session_id == "00Dpw!y" and client.sf_instance == "na1.my.salesforce.com"


@responses.activate
def test_a_503_is_retried_in_place_with_backoff() -> None:
    from connectors.throttle import RetryPolicy

    url = re.compile(r".*/queryAll/.*")
    responses.get(url, status=503, json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}])
    responses.get(url, json={"totalSize": 0, "done": True, "records": []})
    sleeps: list[float] = []
    policy = RetryPolicy(sleep=sleeps.append, rand=lambda: 0.5)
    pages = list(
        sf.read_object(_client(), sf.ObjectSpec("Account", delete_log=False), None, policy=policy)
    )
    assert len(sleeps) == 1 and len(responses.calls) == 2
    assert pages[-1].records == []


def test_a_resync_cut_short_by_the_quota_still_retires_what_vanished(
    engine: Engine, tmp_path: Path
) -> None:
    with FakeSalesforce() as fake:
        _accounts(fake.org, 6, start=datetime.now(UTC) - timedelta(days=1))
        spec = _spec(_ws(tmp_path), _cfg(), fake.client())
        run_stream(engine, spec, "r1")
        gone = fake.org.records["Account"].pop(2)  # purged: in no log we can still read
        with engine.begin() as conn:  # and our last look at the delete log is too old
            cur = load_cursor(conn, spec.key) or {}
            cur["deleted_checked"] = "2000-01-01T00:00:00.000Z"
            save_cursor(conn, spec.key, cur, "test")
        fake.org.api_total, fake.org.api_used = 100, 88  # the resync stops after a page or two
        res = run_stream(engine, spec, "r2")
        assert res.resynced and _orgs(engine)[gone["Name"]][1] is None  # not yet known
        with engine.connect() as conn:
            assert (load_cursor(conn, spec.key) or {})["sweep_pending"] is True
        fake.org.api_used = 0  # the next day: catch up, then list every live Id once
        res3 = run_stream(engine, spec, "r3")
        assert res3.stats.deleted == 1
        assert _orgs(engine)[gone["Name"]][1] is not None
        with engine.connect() as conn:
            assert (load_cursor(conn, spec.key) or {})["sweep_pending"] is False
