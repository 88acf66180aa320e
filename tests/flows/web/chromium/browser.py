"""Headless Chromium (Debian's, through chromedriver) driving the app served by uvicorn."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

ARTIFACTS = Path(__file__).resolve().parents[4] / "test-artifacts" / "web"
DESKTOP = (1280, 900)
PHONE = (390, 844)


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app on a free loopback port in a thread; stopped when the block ends."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web app did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--disable-dev-shm-usage",
        "--lang=ja-JP",
    ):
        opts.add_argument(arg)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=opts, service=service)
    driver.set_window_size(*DESKTOP)
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(driver: webdriver.Chrome, base: str, email: str, password: str) -> None:
    driver.delete_all_cookies()
    driver.get(f"{base}/sign-in")
    driver.find_element(By.ID, "email").send_keys(email)
    driver.find_element(By.ID, "password").send_keys(password)
    click_and_wait(driver, "form button[type=submit]")


def click_and_wait(driver: webdriver.Chrome, css: str) -> None:
    """Click a submit button and wait until the answer page has replaced this one."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, css).click()
    WebDriverWait(driver, 60).until(lambda d: _gone(old))


def _gone(old: Any) -> bool:
    """Stale, or a node Chromium already dropped ("does not belong to the document"), which
    selenium's ``staleness_of`` reports as an error instead of as gone."""
    try:
        return bool(staleness_of(old)(None))
    except WebDriverException:
        return True


def shoot(driver: webdriver.Chrome, name: str) -> list[Path]:
    """Screenshots at desktop and phone width; asserts the phone page needs no sideways scroll."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = []
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        driver.set_window_size(*size)
        driver.refresh()
        driver.execute_script("window.scrollTo(0, 0)")
        path = ARTIFACTS / f"{name}-{label}.png"
        driver.save_screenshot(str(path))
        out.append(path)
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        assert overflow <= 1, f"{name} at {label} width scrolls sideways by {overflow}px"
    driver.set_window_size(*DESKTOP)
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"{name}: the browser reported {errors}"  # CSP violations, 404 assets
    return out
