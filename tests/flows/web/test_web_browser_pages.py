"""The rest of the pages in headless Chromium: a rep edits and submits the 日報, a manager
reads it, opens the pipeline and approves a campaign plan, an admin accepts a review pair;
each page screenshotted at desktop and phone width (test-artifacts/web/)."""

from __future__ import annotations

from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from flows.web.app import from_workspace
from tests.flows.cli.support import workspace
from tests.flows.web.browser import chromium, click_and_wait, serving, shoot, sign_in
from tests.flows.web.conftest import PASSWORD, World, email, seed
from tests.flows.web.test_web_campaigns import PUSH
from tests.flows.web.test_web_review import _twin
from tests.support.push_seed import consent
from warehouse.db import open_warehouse


def test_daily_pipeline_campaign_and_review_pages_in_chromium(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'wh.db'}")
    staff, customer, deal = seed(engine)
    world = World(engine, staff, customer, deal, tmp_path / ".kizuna")
    consent(engine, customer["a1"], "opted_in")
    _twin(world, "a1", 0.8)
    app = from_workspace(workspace(tmp_path, engine, monkeypatch, **PUSH))
    try:
        with serving(app) as base, chromium() as d:
            sign_in(d, base, email("a1"), PASSWORD)
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
            assert "sent" in d.page_source and "→ sent" in d.page_source
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
    finally:
        engine.dispose()
