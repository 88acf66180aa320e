"""The rest of the pages in headless Chromium: a rep edits and submits the 日報, a manager
reads it, opens the pipeline and approves a campaign plan (its run followed live on the page),
an admin accepts a review pair; the rep signs in through a local OpenID provider;
each page screenshotted at desktop and phone width (test-artifacts/web/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from flows.web.app import from_workspace
from tests.flows.cli.support import workspace
from tests.flows.web.chromium.browser import chromium, click_and_wait, serving, shoot, sign_in
from tests.flows.web.conftest import PASSWORD, World, email, seed
from tests.flows.web.test_web_campaigns import PUSH
from tests.flows.web.test_web_review import _twin
from tests.support import oidc_provider
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET
from tests.support.push.push_seed import consent
from warehouse.db import open_warehouse


@pytest.mark.slow
def test_daily_pipeline_campaign_and_review_pages_in_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'wh.db'}")
    staff, customer, deal = seed(engine)
    world = World(engine, staff, customer, deal, tmp_path / ".kizuna")
    consent(engine, customer["a1"], "opted_in")
    _twin(world, "a1", 0.8)
    monkeypatch.setenv("KIZUNA_TEST_OIDC_SECRET", CLIENT_SECRET)
    try:
        with oidc_provider.running(email("a1")) as idp:
            web = {"oidc": {"google": {**GOOGLE, "issuer": idp.issuer}}}
            app = from_workspace(workspace(tmp_path, engine, monkeypatch, **PUSH, web=web))
            with serving(app) as base, chromium() as d:
                _pages(d, base)
    finally:
        engine.dispose()


GOOGLE = {
    "label": "Google Workspace",
    "client_id": CLIENT_ID,
    "client_secret_env": "KIZUNA_TEST_OIDC_SECRET",
    "allowed_domains": ["own.example.jp"],
}


def _pages(d: Any, base: str) -> None:
    # The rep signs in through the (local) OpenID provider: app → provider → app.
    d.get(f"{base}/sign-in?next=/daily")
    shoot(d, "sign-in-oidc")
    d.find_element(By.LINK_TEXT, "Sign in with Google Workspace").click()
    WebDriverWait(d, 60).until(lambda d: d.current_url.startswith(f"{base}/daily"))
    assert "Staff a1" in d.page_source
    d.get(f"{base}/daily?date=2026-12-03")
    assert "Mail of a1" in d.page_source
    shoot(d, "daily-draft")
    d.find_element(By.NAME, "body").send_keys("\n所感: 田中様は来期に前向き。")
    click_and_wait(d, "form[action='/daily/submit'] button")
    assert "Submitted" in d.page_source and "来期に前向き" in d.page_source
    shoot(d, "daily-submitted")

    sign_in(d, base, email("mgr"), PASSWORD)
    d.get(f"{base}/daily/team?date=2026-12-03")
    assert "来期に前向き" in d.page_source
    shoot(d, "daily-team")
    d.get(f"{base}/pipeline")
    assert "Staff a1" in d.page_source and "Staff b1" not in d.page_source
    shoot(d, "pipeline")
    d.get(f"{base}/campaigns/news")
    click_and_wait(d, "button[value=plan]")
    assert "made" in d.page_source and "田中 太郎" in d.page_source
    shoot(d, "campaign-plan")
    click_and_wait(d, "button[value=approve]")
    assert "sending" in d.page_source
    # kizuna.js swaps in the live part until the run is over: no reload here.
    WebDriverWait(d, 90).until(lambda d: "Run done" in d.page_source)
    assert "→ sent" in d.page_source and "data-refresh" not in d.page_source
    shoot(d, "campaign-sent")

    sign_in(d, base, email("boss"), PASSWORD)
    d.get(f"{base}/review")
    assert "name +6.5" in d.page_source
    shoot(d, "review")
    click_and_wait(d, "button[value=accept]")
    assert "accepted" in d.page_source and "The review queue is empty" in d.page_source
    d.get(f"{base}/admin/audit")
    assert "review-accept" in d.page_source and "campaign-approve" in d.page_source
    shoot(d, "audit")
    d.get(f"{base}/admin/sources")
    assert "Run a sync" in d.page_source
    shoot(d, "sources")
