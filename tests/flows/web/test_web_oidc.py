"""Sign-in through an OpenID provider, against a local one over real HTTP (discovery, JWKS
with a real RSA key, token endpoint checking PKCE): the round trip signs in the staff user
with that verified address; forged, mis-addressed, expired, replayed or unverified tokens and
addresses without an account do not."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from flows.web.app import build
from flows.web.oidc import WebConfig, web_config
from flows.workspace import Workspace
from kizuna.errors import ConfigError
from tests.flows.web.conftest import World, email
from tests.support import oidc_provider
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, FakeOidc
from warehouse.access.schema import AuditLog


@pytest.fixture
def idp(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOidc]:
    monkeypatch.setenv("KIZUNA_TEST_OIDC_SECRET", CLIENT_SECRET)
    with oidc_provider.running(email("a1")) as p:
        yield p


def app_for(world: World, idp: FakeOidc, **more: Any) -> TestClient:
    web = WebConfig.model_validate(
        {
            "oidc": {
                "google": {
                    "label": "Google Workspace",
                    "issuer": idp.issuer,
                    "client_id": CLIENT_ID,
                    "client_secret_env": "KIZUNA_TEST_OIDC_SECRET",
                    "allowed_domains": ["own.example.jp"],
                    **more,
                }
            }
        }
    )
    return TestClient(build(world.engine, world.state_dir, web=web), follow_redirects=False)


def round_trip(c: TestClient, nxt: str = "/pipeline") -> httpx.Response:
    """Start at the app, sign in at the provider, come back: the callback's response."""
    start = c.get("/sign-in/oidc/google", params={"next": nxt})
    assert start.status_code == 303, start.text
    at_provider = httpx.get(start.headers["location"], follow_redirects=False)
    back = urlsplit(at_provider.headers["location"])
    return c.get(f"{back.path}?{back.query}")


def signed_in(c: TestClient) -> bool:
    return c.get("/customers").status_code == 200


def audit_actions(world: World) -> list[tuple[str, str | None]]:
    with world.engine.connect() as conn:
        a = AuditLog.__table__
        return [(r.action, r.detail) for r in conn.execute(select(a).order_by(a.c.id))]


def test_the_round_trip_signs_in_the_staff_user_with_the_verified_address(
    world: World, idp: FakeOidc
) -> None:
    c = app_for(world, idp)
    page = c.get("/sign-in").text
    assert "Sign in with Google Workspace" in page and CLIENT_SECRET not in page
    start = c.get("/sign-in/oidc/google")
    q = {k: v[0] for k, v in parse_qs(urlsplit(start.headers["location"]).query).items()}
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert len(q["state"]) >= 32 and len(q["nonce"]) >= 32 and q["scope"] == "openid email profile"
    assert q["redirect_uri"] == "http://testserver/sign-in/oidc/google/callback"
    assert q["hd"] == "own.example.jp"

    c = app_for(world, idp)
    done = round_trip(c)
    assert done.status_code == 303 and done.headers["location"] == "/pipeline"
    assert signed_in(c) and "Staff a1" in c.get("/customers").text
    assert ("sign-in", None) in audit_actions(world)
    # The same callback again (a replayed redirect): its state was used up.
    replay = c.get(f"/sign-in/oidc/google/callback?code=x&state={q['state']}")
    assert replay.status_code == 400 and CLIENT_SECRET not in replay.text


def _expired(claims: dict[str, Any]) -> dict[str, Any]:
    return {**claims, "iat": int(time.time()) - 7200, "exp": int(time.time()) - 3600}


def _no_nonce(claims: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k != "nonce"}


CASES: list[tuple[str, Callable[[FakeOidc], None], str]] = [
    ("forged", lambda p: setattr(p, "forge_with", oidc_provider.new_key()), "signature verif"),
    ("audience", lambda p: setattr(p, "tamper", lambda c: {**c, "aud": "other"}), "audience"),
    ("issuer", lambda p: setattr(p, "tamper", lambda c: {**c, "iss": "https://x"}), "issuer"),
    ("expired", lambda p: setattr(p, "tamper", _expired), "expired"),
    ("no nonce", lambda p: setattr(p, "tamper", _no_nonce), "nonce does not match"),
    ("replayed nonce", lambda p: setattr(p, "replay", p.issued[0]), "nonce does not match"),
    ("unverified", lambda p: setattr(p, "email_verified", False), "not verified"),
    ("domain", lambda p: setattr(p, "email", "a1@elsewhere.example.com"), "allowed domains"),
    ("not staff", lambda p: setattr(p, "email", "stranger@own.example.jp"), ""),
]
"""(case, how the provider spoils the token, why the audit log says it was refused)"""


def test_tokens_that_do_not_prove_the_sign_in_are_refused(world: World, idp: FakeOidc) -> None:
    first = app_for(world, idp)
    assert round_trip(first).status_code == 303 and len(idp.issued) == 1  # the replay's source
    for name, spoil, why in CASES:
        idp.tamper, idp.forge_with, idp.replay = None, None, None
        idp.email, idp.email_verified = email("a1"), True
        spoil(idp)
        c = app_for(world, idp)
        before = len(audit_actions(world))
        r = round_trip(c)
        assert r.status_code == 401, (name, r.status_code)
        assert not signed_in(c), name
        assert CLIENT_SECRET not in r.text
        action, detail = audit_actions(world)[before]
        if why:
            assert "could not be verified" in r.text, name
            assert action == "sign-in-refused" and why in (detail or "").lower(), (name, detail)
        else:
            assert "has no Kizuna account" in r.text and action == "sign-in-unknown", name


def test_a_rotated_key_is_fetched_and_an_entra_style_user_name_signs_in(
    world: World, idp: FakeOidc, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.web import oidc

    assert signed_in_after(app_for(world, idp))
    idp.key, idp.kid = oidc_provider.new_key(), "key-2"  # the provider rotates its key
    assert not signed_in_after(app_for(world, idp))  # fetched moments ago: not again yet
    monkeypatch.setattr(oidc, "REFETCH_SECONDS", 0)
    assert signed_in_after(app_for(world, idp))  # the app fetched the JWKS again
    # Microsoft Entra (your tenant's issuer): the user name, no email_verified claim.
    entra = {"email_claim": "preferred_username", "require_email_verified": False}
    idp.email_verified = False
    assert not signed_in_after(app_for(world, idp))  # Google rules: unverified is refused
    assert signed_in_after(app_for(world, idp, **entra))


def signed_in_after(c: TestClient) -> bool:
    return round_trip(c).status_code == 303 and signed_in(c)


def test_a_callback_from_another_browser_or_without_a_code_is_refused(
    world: World, idp: FakeOidc
) -> None:
    victim, attacker = app_for(world, idp), app_for(world, idp)
    start = attacker.get("/sign-in/oidc/google")
    at_provider = httpx.get(start.headers["location"], follow_redirects=False)
    back = urlsplit(at_provider.headers["location"])
    # Login CSRF: the attacker's code, planted in the victim's browser, has no state there.
    assert victim.get(f"{back.path}?{back.query}").status_code == 400
    assert not signed_in(victim)
    victim.get("/sign-in/oidc/google")
    assert (
        victim.get("/sign-in/oidc/google/callback?error=access_denied&state=x").status_code == 400
    )
    assert idp.token_calls == 0
    assert victim.get("/sign-in/oidc/nobody").status_code == 404


def test_the_web_section_is_checked_when_the_app_starts(tmp_path: Path) -> None:
    def check(oidc: dict[str, Any]) -> None:
        ws = Workspace.model_validate(
            {"company": {"name": "x"}, "web": {"oidc": oidc}, "path": tmp_path / "kizuna.yaml"}
        )
        web_config(ws)

    good = {"issuer": "https://accounts.google.com", "client_id": "c", "client_secret_env": "S"}
    check({"google": {**good, "allowed_domains": ["Example.co.jp"]}})
    for bad, why in (
        ({"google": {**good, "allowed_domains": []}}, "allowed_domains"),
        (
            {"google": {**good, "allowed_domains": ["x.jp"], "issuer": "http://idp.example"}},
            "https",
        ),
        (
            {
                "ms": {
                    **good,
                    "allowed_domains": ["x.jp"],
                    "issuer": "https://login.microsoftonline.com/common/v2.0",
                }
            },
            "tenant",
        ),
        ({"Google!": {**good, "allowed_domains": ["x.jp"]}}, "not allowed"),
    ):
        with pytest.raises(ConfigError) as err:
            check(bad)
        assert why in str(err.value), (bad, str(err.value))


def test_kizuna_check_asks_each_provider(
    world: World, idp: FakeOidc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from flows.cli.main import app
    from tests.flows.cli.support import workspace

    google = {
        "issuer": idp.issuer,
        "client_id": CLIENT_ID,
        "client_secret_env": "KIZUNA_TEST_OIDC_SECRET",
        "allowed_domains": ["own.example.jp"],
    }
    web = {"oidc": {"google": google, "ms": {**google, "client_secret_env": "KIZUNA_UNSET_X"}}}
    ws = workspace(tmp_path, world.engine, monkeypatch, web=web)
    out = CliRunner().invoke(app, ["check", "-w", str(ws)], env={"COLUMNS": "250"}).output
    assert f"✓ web sign-in google: {idp.issuer} answers" in out, out
    assert "✗ web sign-in ms: web.oidc.ms.client_secret_env: secret 'KIZUNA_UNSET_X'" in out, out
    assert CLIENT_SECRET not in out
