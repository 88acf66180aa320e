"""The pages in real headless Chromium: sign in, search by kana, a note the team sees and
another team does not; screenshots at desktop and phone width under test-artifacts/web/."""

from __future__ import annotations

from pathlib import Path

from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from flows.web.app import build
from tests.flows.web.chromium.browser import chromium, click_and_wait, serving, shoot, sign_in
from tests.flows.web.conftest import PASSWORD, email, seed
from warehouse.access import accounts
from warehouse.db import open_warehouse


def test_sign_in_search_by_kana_and_a_note_the_team_sees(tmp_path: Path) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'wh.db'}")
    _, customer, _ = seed(engine)
    with engine.begin() as conn:
        accounts.set_scope(conn, "rep", "team")
    shots: list[Path] = []
    try:
        with serving(build(engine, tmp_path / ".kizuna")) as base, chromium() as d:
            d.get(f"{base}/customers")
            assert "/sign-in" in d.current_url
            shots += shoot(d, "sign-in")
            sign_in(d, base, email("a1"), "not the password")
            assert "Wrong e-mail address or password" in d.page_source
            d.get_log("browser")  # the refused sign-in's 401 is expected: drained here
            sign_in(d, base, email("a1"), PASSWORD)
            assert d.current_url.endswith("/today")  # My day comes first
            shots += shoot(d, "my-day")
            d.get(f"{base}/customers")
            box = d.find_element(By.NAME, "q")
            box.send_keys("たなか")
            click_and_wait(d, "form.search button")
            d.find_element(By.LINK_TEXT, "田中 太郎")
            shots += shoot(d, "customers")
            old = d.find_element(By.TAG_NAME, "html")
            d.find_element(By.LINK_TEXT, "田中 太郎").click()
            WebDriverWait(d, 60).until(staleness_of(old))
            assert d.current_url.endswith(f"/customers/{customer['a1']}")
            d.find_element(By.NAME, "text").send_keys("来週、見積の再提出。担当: 田中様")
            click_and_wait(d, "form[action$='/notes'] button")
            assert "来週、見積の再提出" in d.find_element(By.CSS_SELECTOR, ".note p").text
            shots += shoot(d, "customer-360")

            sign_in(d, base, email("a2"), PASSWORD)  # a teammate
            d.get(f"{base}/customers/{customer['a1']}")
            assert "来週、見積の再提出" in d.page_source
            sign_in(d, base, email("b1"), PASSWORD)  # another team
            d.get(f"{base}/customers/{customer['a1']}")
            assert "来週、見積の再提出" not in d.page_source
            assert "404" in d.title and "田中" not in d.page_source
    finally:
        engine.dispose()
    for shot in shots:
        img = Image.open(shot).convert("L")
        assert img.getextrema()[0] < 100, f"{shot.name} is blank"  # text was drawn
