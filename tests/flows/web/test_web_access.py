"""Signing in, scopes by URL, notes the team sees, CSRF, lock-out and the audit log."""

from __future__ import annotations

import re

from sqlalchemy import select

from tests.flows.web.conftest import PASSWORD, World, csrf_of, email, sign_in
from warehouse.access import accounts, audit
from warehouse.access.schema import StaffAccount


def test_a_rep_sees_own_customers_and_not_another_reps_by_guessing_the_url(world: World) -> None:
    c = world.client()
    assert sign_in(c, "a1") == 303
    listing = c.get("/customers")
    assert listing.status_code == 200
    assert "田中 太郎" in listing.text and "佐藤" not in listing.text and "鈴木" not in listing.text
    assert c.get(f"/customers/{world.customer['a1']}").status_code == 200
    for other in ("a2", "b1"):
        r = c.get(f"/customers/{world.customer[other]}")
        assert r.status_code == 404
        assert f"Deal of {other}" not in r.text and "customer-of-" + other not in r.text
    assert c.get("/customers/999999").status_code == 404  # the same answer as a stranger's
    found = c.get("/customers", params={"q": "佐藤"}).text
    assert "次郎" not in found and f'href="/customers/{world.customer["b1"]}"' not in found


def test_search_finds_a_customer_by_kana_romaji_mail_phone_and_company(world: World) -> None:
    c = world.client()
    sign_in(c, "boss")
    pid = world.customer["a1"]
    phone = f"090-{world.staff['a1']:08d}"
    for q in ("タナカ", "たなか", "田中太郎", "customer-of-a1", phone, "Company of a1"):
        body = c.get("/customers", params={"q": q}).text
        assert f'href="/customers/{pid}"' in body, q
    assert f'href="/customers/{pid}"' not in c.get("/customers", params={"q": "スズキ"}).text


def test_a_note_is_seen_by_the_team_and_not_by_another_team(world: World) -> None:
    with world.engine.begin() as conn:
        accounts.set_scope(conn, "rep", "team")
    a1, a2, b1 = world.client(), world.client(), world.client()
    for client, who in ((a1, "a1"), (a2, "a2"), (b1, "b1")):
        assert sign_in(client, who) == 303
    url = f"/customers/{world.customer['a1']}"
    token = csrf_of(a1.get(url).text)
    r = a1.post(f"{url}/notes", data={"text": "予算は来期 <b>確定</b>", "csrf": token})
    assert r.status_code == 303
    seen = a2.get(url)
    assert seen.status_code == 200
    assert "予算は来期 &lt;b&gt;確定&lt;/b&gt;" in seen.text  # escaped, never markup
    assert "Staff a1" in seen.text
    assert b1.get(url).status_code == 404
    assert "予算は来期" not in b1.get("/customers", params={"q": "田中"}).text


def test_forms_without_the_csrf_token_are_refused(world: World) -> None:
    c = world.client()
    sign_in(c, "a1")
    url = f"/customers/{world.customer['a1']}/notes"
    assert c.post(url, data={"text": "no token"}).status_code == 403
    assert c.post(url, data={"text": "wrong", "csrf": "x" * 43}).status_code == 403
    token = csrf_of(c.get(f"/customers/{world.customer['a1']}").text)
    cross = c.post(
        url, data={"text": "x", "csrf": token}, headers={"origin": "https://evil.example"}
    )
    assert cross.status_code == 403
    fresh = world.client()
    r = fresh.post("/sign-in", data={"email": email("a1"), "password": PASSWORD})
    assert r.status_code == 403
    with world.engine.connect() as conn:
        assert not [n for n in audit.recent(conn) if n["action"] == "note-add"]


def test_five_wrong_passwords_lock_the_account_until_an_admin_resets_it(world: World) -> None:
    c = world.client()
    for _ in range(4):
        assert sign_in(c, "a2", "wrong password!") == 401
    page = c.get("/sign-in")
    r = c.post(
        "/sign-in",
        data={"email": email("a2"), "password": "wrong again!", "csrf": csrf_of(page.text)},
    )
    assert r.status_code == 401 and "locked" in r.text
    assert sign_in(c, "a2") == 401  # the right password does not help while locked
    with world.engine.begin() as conn:
        until = conn.execute(
            select(StaffAccount.locked_until).where(StaffAccount.staff_user_id == world.staff["a2"])
        ).scalar()
        assert until is not None
        accounts.reset_password(conn, email("a2"), "a brand new passphrase")
    assert sign_in(c, "a2", "a brand new passphrase") == 303
    with world.engine.connect() as conn:
        actions = [r["action"] for r in audit.recent(conn) if r["actor"] == email("a2")]
    assert actions.count("sign-in-wrong") == 4 and actions.count("sign-in-locked") == 2


def test_a_password_reset_ends_older_sessions(world: World) -> None:
    c = world.client()
    sign_in(c, "a1")
    assert c.get("/customers").status_code == 200
    with world.engine.begin() as conn:
        accounts.reset_password(conn, email("a1"), "another long passphrase")
    r = c.get("/customers")
    assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")


def test_no_route_answers_without_a_session_except_sign_in_and_assets(world: World) -> None:
    from starlette.routing import Route

    from flows.web.app import PUBLIC, routes

    c = world.client()
    walked = 0
    for route in routes():
        assert isinstance(route, Route)
        path = re.sub(r"\{[^}]+\}", "1", route.path)
        for method in sorted(route.methods or {"GET"}):
            if method == "HEAD":
                continue
            walked += 1
            r = c.request(method, path)
            if route.path in PUBLIC or route.path == "/":
                continue
            assert r.status_code in (303, 401, 403), (method, path, r.status_code)
            if r.status_code == 303:
                assert r.headers["location"].startswith("/sign-in"), (method, path)
            assert "田中" not in r.text and "Deal of" not in r.text
    assert walked >= 6
    assert c.get("/").headers["location"] == "/today"


def test_session_cookie_is_httponly_samesite_and_secrets_stay_out_of_pages(world: World) -> None:
    c = world.client()
    token = csrf_of(c.get("/sign-in").text)
    r = c.post("/sign-in", data={"email": email("boss"), "password": PASSWORD, "csrf": token})
    assert r.status_code == 303
    cookie = next(h for k, h in r.headers.multi_items() if k == "set-cookie")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    key = (world.state_dir / "web-secret").read_text()
    assert len(key.encode()) >= 32
    assert (world.state_dir / "web-secret").stat().st_mode & 0o077 == 0
    with world.engine.connect() as conn:
        hashes = list(conn.execute(select(StaffAccount.password_hash)).scalars())
    for url in ("/customers", f"/customers/{world.customer['b1']}", "/admin/audit"):
        body = c.get(url).text
        assert key not in body and PASSWORD not in body
        assert not any(h in body for h in hashes)
        assert "$argon2" not in body


def test_views_and_changes_are_in_the_audit_log_and_only_admins_read_it(world: World) -> None:
    rep, boss = world.client(), world.client()
    sign_in(rep, "a1")
    sign_in(boss, "boss")
    url = f"/customers/{world.customer['a1']}"
    rep.post(f"{url}/notes", data={"text": "call back", "csrf": csrf_of(rep.get(url).text)})
    rep.get(f"/customers/{world.customer['b1']}")
    assert rep.get("/admin/audit").status_code == 403
    log = boss.get("/admin/audit")
    assert log.status_code == 200
    for action in ("sign-in", "view", "note-add", "view-refused"):
        assert f">{action}<" in log.text
    assert f"customer {world.customer['b1']}" in log.text


def test_cost_is_production() -> None:
    """Outside the tests' cheap fixture, hashes are argon2id at argon2-cffi's RFC 9106 cost."""
    import argon2

    from warehouse.access import accounts

    digest = argon2.PasswordHasher().hash("a long passphrase")
    assert accounts._DUMMY.startswith("$argon2id$")
    assert accounts._DUMMY.split("$")[3] == digest.split("$")[3]  # m=…,t=…,p=… identical
