"""The conformance suite for the ``gmail`` source, on a stateful fake Gmail mailbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from connectors.mail.gmail import GmailCursor
from connectors.throttle import RetryPolicy, TokenBucket
from flows.engine import StreamSpec
from flows.sources import gmail as source_gmail
from flows.workspace import Company, Workspace
from tests.support.conformance import ConformanceSuite, SourceHarness
from tests.support.fakes.fake_gmail import FakeGmail
from tests.support.fakes.google_fakes import service


class GmailHarness:
    def __init__(self, tmp_path: Path, max_page_bytes: int | None = None) -> None:
        self.name = "gmail"
        self.supports_deletes = True
        self.box = FakeGmail()
        self.max_page_bytes = max_page_bytes
        self.ws = Workspace(
            company=Company(name="アワコ", domains=["ourco.co.jp"]), path=tmp_path / "k.yaml"
        )

    def spec(self) -> StreamSpec:
        cfg = source_gmail.Config(
            accounts=[self.box.address], service_account_key_env="UNUSED", page_size=2
        )
        options: dict[str, Any] = {
            "policy": RetryPolicy(max_retries=0, sleep=lambda s: None),
            "budget": TokenBucket(1e6, 1e6),
        }
        if self.max_page_bytes is not None:
            options["max_page_bytes"] = self.max_page_bytes
        (spec,) = source_gmail.streams(
            "gmail",
            cfg,
            self.ws,
            service_for=lambda _a: service("gmail", "v1", self.box),  # type: ignore[arg-type]
            options=options,
        )
        return spec

    def add(self, n: int) -> None:
        for _ in range(n):
            self.box.add()

    def remove(self) -> None:
        self.box.delete(sorted(self.box.visible())[0])

    def expected_ids(self) -> set[str]:
        return set(self.box.visible())

    def force_reset(self, engine: Engine) -> None:
        self.box.forget_history()

    def order(self, cursor: Any) -> tuple[Any, ...]:
        assert isinstance(cursor, GmailCursor)
        return (int(cursor.history_id), cursor.phase == "incremental", int(cursor.page_token or 0))


class TestGmailConformance(ConformanceSuite):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[SourceHarness]:
        yield GmailHarness(tmp_path)


class TestGmailConformanceBigMail(ConformanceSuite):
    """Every message over the page byte budget: each becomes its own engine page, the early
    ones under the cursor from before their list page, so a crash re-fetches, never skips."""

    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[SourceHarness]:
        yield GmailHarness(tmp_path, max_page_bytes=1)


def test_trash_is_a_deletion_and_untrash_brings_it_back(engine: Engine, tmp_path: Path) -> None:
    from flows.engine import run_stream
    from tests.support.conformance import live_ids

    h = GmailHarness(tmp_path)
    h.add(3)
    spec = h.spec()
    run_stream(engine, spec, "r1")
    victim = sorted(h.box.visible())[0]
    h.box.trash(victim)
    run_stream(engine, spec, "r2")
    assert live_ids(engine, spec.key) == h.expected_ids() and victim not in h.expected_ids()
    h.box.messages[victim].labels = ["INBOX"]
    h.box._record("labelsRemoved", victim, ["TRASH"])
    run_stream(engine, spec, "r3")
    assert victim in live_ids(engine, spec.key)


def test_over_real_http_with_a_bearer_token(engine: Engine, tmp_path: Path) -> None:
    """The same mailbox behind a local HTTP server (``client_options.api_endpoint``): real
    sockets, real httplib2, google-auth adding the bearer token."""
    import http.server
    import threading

    from google.oauth2.credentials import Credentials

    from connectors.google_api import build_service
    from flows.engine import run_stream
    from tests.support.conformance import live_ids

    h = GmailHarness(tmp_path)
    h.add(3)
    auth_headers: list[str | None] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            auth_headers.append(self.headers.get("authorization"))
            resp, content = h.box.request("http://fake" + self.path)
            self.send_response(int(resp.status))
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_address[1]}/"
        cfg = source_gmail.Config(accounts=[h.box.address], service_account_key_env="UNUSED")
        (spec,) = source_gmail.streams(
            "gmail",
            cfg,
            h.ws,
            service_for=lambda _a: build_service(
                "gmail",
                "v1",
                credentials=Credentials(token="ya29.test-token"),
                client_options={"api_endpoint": endpoint},
            ),
            options={"policy": RetryPolicy(max_retries=0, sleep=lambda s: None)},
        )
        run_stream(engine, spec, "http-1")
        h.box.delete(sorted(h.box.visible())[0])
        run_stream(engine, spec, "http-2")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert live_ids(engine, spec.key) == h.expected_ids() and len(h.expected_ids()) == 2
    assert auth_headers and set(auth_headers) == {"Bearer ya29.test-token"}
