"""``kizuna check`` reports each CRM's API quota as the API itself reports it: Salesforce's
``/limits``, HubSpot's rate-limit headers, kintone's concurrency headers (real response
shapes, mocked transports: respx for httpx, ``responses`` for simple-salesforce's requests)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import responses
import respx
import yaml

from connectors.crm.salesforce_auth import API_VERSION
from tests.flows.cli.support import kizuna

SF = "https://acme.my.salesforce.com"
HUBSPOT = "https://api.hubapi.com"
KINTONE = "https://acme.cybozu.com"


def _limits(max_: int, remaining: int) -> dict[str, object]:
    """The shape of ``GET /services/data/vXX.X/limits/`` (abridged: three of its ~60 keys)."""
    return {
        "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
        "DailyApiRequests": {
            "Max": max_,
            "Remaining": remaining,
            "Ant Migration Tool": {"Max": 0, "Remaining": 0},
        },
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 9990},
    }


def _workspace(tmp_path: Path, quota_share: float = 0.8) -> Path:
    data = {
        "company": {"name": "株式会社サンプル", "domains": ["ours.co.jp"]},
        "warehouse": {"url": "sqlite:///wh.db"},
        "sources": {
            "sfdc": {
                "type": "salesforce",
                "auth": {"client_id": "3MVG9.app", "refresh_token_env": "KZ_SF_REFRESH"},
                "quota_share": quota_share,
                "objects": {"Account": {}, "Contact": {}},
            },
            "hub": {
                "type": "hubspot",
                "token_env": "KZ_HUBSPOT",
                "objects": {"companies": {}, "contacts": {}},
            },
            "kin": {
                "type": "kintone",
                "base_url": KINTONE,
                "apps": {
                    "customers": {
                        "app": 12,
                        "token_env": "KZ_KINTONE",
                        "entity": "organization",
                        "field_map": {"name": "会社名"},
                    }
                },
            },
        },
    }
    path = tmp_path / "kizuna.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _hubspot_headers(remaining_daily: int) -> dict[str, str]:
    return {
        "X-HubSpot-RateLimit-Daily": "250000",
        "X-HubSpot-RateLimit-Daily-Remaining": str(remaining_daily),
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "99",
        "X-HubSpot-RateLimit-Secondly": "10",
        "X-HubSpot-RateLimit-Secondly-Remaining": "9",
    }


def _mock(
    router: respx.MockRouter, rsps: responses.RequestsMock, *, sf_left: int, hs_left: int
) -> dict[str, respx.Route]:
    rsps.post(
        "https://login.salesforce.com/services/oauth2/token",
        json={"access_token": "00Dxx!token", "instance_url": SF, "token_type": "Bearer"},
    )
    rsps.get(f"{SF}/services/data/v{API_VERSION}/limits/", json=_limits(15000, sf_left))
    empty = {"results": [], "paging": None}
    routes = {
        obj: router.get(f"{HUBSPOT}/crm/v3/objects/{obj}").mock(
            return_value=httpx.Response(200, json=empty, headers=_hubspot_headers(hs_left))
        )
        for obj in ("companies", "contacts")
    }
    routes["kintone"] = router.get(f"{KINTONE}/k/v1/records.json").mock(
        return_value=httpx.Response(
            200,
            json={"records": [], "totalCount": None},
            headers={"X-ConcurrencyLimit-Limit": "100", "X-ConcurrencyLimit-Running": "3"},
        )
    )
    return routes


@pytest.fixture
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KIZUNA_WAREHOUSE_URL", raising=False)
    monkeypatch.setenv("KZ_SF_REFRESH", "5Aep-refresh-secret")
    monkeypatch.setenv("KZ_HUBSPOT", "pat-na1-secret")
    monkeypatch.setenv("KZ_KINTONE", "kintone-token-secret")


def _line(output: str, prefix: str) -> str:
    return next(ln for ln in output.splitlines() if ln[2:].startswith(prefix))


@pytest.mark.usefixtures("secrets")
def test_check_reports_quota_left_for_each_crm(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    with (
        respx.mock(assert_all_called=True) as router,
        responses.RequestsMock(assert_all_requests_are_fired=True) as rsps,
    ):
        routes = _mock(router, rsps, sf_left=12000, hs_left=249000)
        out = kizuna("check", "-w", str(ws))
        kin = routes["kintone"].calls.last.request
    assert out.exit_code == 0, out.output
    sf = _line(out.output, "source sfdc api:")
    assert sf.startswith("✓")
    assert "API requests: 12,000 of 15,000 left per day (20% used)" in sf
    assert "Bulk API 2.0 query jobs: 9,990 of 10,000 left" in sf
    hs = _line(out.output, "source hub api:")
    assert hs.startswith("✓") and "companies, contacts readable" in hs
    assert "API requests: 249,000 of 250,000 left per day" in hs
    assert "burst: 99 of 100 left per 10 s" in hs
    kt = _line(out.output, "source kin api:")
    assert kt.startswith("✓") and "apps customers readable" in kt
    assert "concurrent requests: 97 of 100 left" in kt and "daily usage is not reported" in kt
    assert kin.headers["X-Cybozu-API-Token"] == "kintone-token-secret"
    assert kin.url.params["app"] == "12"
    for secret in ("5Aep-refresh-secret", "pat-na1-secret", "kintone-token-secret", "00Dxx"):
        assert secret not in out.output


@pytest.mark.usefixtures("secrets")
def test_check_fails_with_the_fix_when_a_quota_is_spent(tmp_path: Path) -> None:
    ws = _workspace(tmp_path, quota_share=0.5)
    with (
        respx.mock(assert_all_called=False) as router,
        responses.RequestsMock(assert_all_requests_are_fired=True) as rsps,
    ):
        _mock(router, rsps, sf_left=6000, hs_left=0)
        out = kizuna("check", "-w", str(ws))
    assert out.exit_code == 1, out.output
    sf = _line(out.output, "source sfdc api:")
    assert sf.startswith("✗") and "60% of the org's daily API requests used" in sf
    assert "raise sources.sfdc.quota_share" in sf
    hs = _line(out.output, "source hub api:")
    assert hs.startswith("✗") and "HubSpot daily API limit spent (250,000 requests)" in hs
    assert "Fix: wait until midnight" in hs


@pytest.mark.usefixtures("secrets")
def test_check_names_a_missing_permission_and_a_refused_token(tmp_path: Path) -> None:
    ws = _workspace(tmp_path)
    with (
        respx.mock(assert_all_called=False) as router,
        responses.RequestsMock(assert_all_requests_are_fired=False) as rsps,
    ):
        rsps.post(
            "https://login.salesforce.com/services/oauth2/token",
            status=400,
            json={"error": "invalid_grant", "error_description": "expired access/refresh token"},
        )
        router.get(f"{HUBSPOT}/crm/v3/objects/companies").mock(
            return_value=httpx.Response(
                403,
                json={
                    "status": "error",
                    "message": "This app hasn't been granted all required scopes to make this "
                    "call.",
                    "category": "MISSING_SCOPES",
                },
            )
        )
        router.get(f"{KINTONE}/k/v1/records.json").mock(
            return_value=httpx.Response(
                401,
                json={"code": "GAIA_IA02", "id": "x", "message": "指定したAPIトークンが不正です。"},
            )
        )
        out = kizuna("check", "-w", str(ws))
    assert out.exit_code == 1, out.output
    assert "refused the refresh token (invalid_grant)" in _line(out.output, "source sfdc api:")
    assert "hubspot companies: the token may not read it" in _line(out.output, "source hub api:")
    assert "kintone refused the API token (GAIA_IA02)" in _line(out.output, "source kin api:")
    assert len(out.output.splitlines()) < 15  # one line each, no traceback
