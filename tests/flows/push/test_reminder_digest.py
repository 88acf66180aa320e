"""Reminders people want: one digest per rep per day, in the workspace's language only,
grouped by kind, each item with customer, deal, why and what next; times in the company's
zone; rendered in headless Chromium for a look (test-artifacts/)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from connectors.mail.outbox import OutboxChannel
from flows.push.reminder_run import run_all
from tests.support.push.push_seed import make_cfg
from tests.warehouse.activation.test_reminders_rules import JST_NOON, RULES, _seed

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


def _mails(folder: Path) -> list[EmailMessage]:
    out = []
    for f in sorted(folder.glob("*.eml")):
        m = message_from_bytes(f.read_bytes(), policy=policy.default)
        assert isinstance(m, EmailMessage)
        out.append(m)
    return out


def _part(m: EmailMessage, kind: str) -> str:
    part = m.get_body(preferencelist=(kind,))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_one_digest_per_rep_per_day_in_one_language(
    engine: Engine, tmp_path: Path, lang: str
) -> None:
    ids = _seed(engine)
    cfg = make_cfg(tmp_path, segments={}, reminders={**RULES, "language": lang})
    outbox = OutboxChannel(tmp_path / "outbox", name="outbox")
    first = run_all(engine, cfg, outbox, as_of=JST_NOON)
    mails = _mails(tmp_path / "outbox")
    assert first.digests == len(mails) == len({m["To"].addresses[0].addr_spec for m in mails})
    assert first.sent > first.digests  # several reminders share a rep's digest
    alice = next(m for m in mails if m["To"].addresses[0].addr_spec == "alice@own.example")
    text, html = _part(alice, "plain"), _part(alice, "html")
    assert alice["Date"].endswith("+0900")  # the company's zone, not +0000
    if lang == "ja":
        assert str(alice["Subject"]).startswith("[Kizuna] 2026-11-27 のリマインダー")
        assert "■ 受注予定日 (2)" in text and "■ 動きのない案件" in text
        assert "遅延案件" in text and "理由: 受注予定日 2026-11-25 を過ぎています" in text
        assert "次の一手: 見込みを確認し" in text
        assert "close date" not in text and "idle" not in text  # one language only
        assert "kind:" not in text and "passed" not in text  # no raw keys
    else:
        assert str(alice["Subject"]).startswith("[Kizuna] ") and "reminders for 2026-11-27" in str(
            alice["Subject"]
        )
        assert "■ Close dates (2)" in text and "Why: the expected close date 2026-11-25" in text
        assert "受注予定日" not in text
    assert text.index("■") < text.index("遅延案件")  # grouped under its kind
    assert "<h2>" in html and "遅延案件" in html

    bob = next(m for m in mails if m["To"].addresses[0].addr_spec == "bob@own.example")
    if lang == "ja":
        # The meeting on Friday 2026-11-20 10:00–11:00 JST, shown in JST with the zone named.
        assert "2026-11-20 11:00 JST の商談後" in _part(bob, "plain")

    # Later the same day: a new condition waits for tomorrow's digest (digest: daily).
    from tests.support.push.push_seed import Seeder, ago

    with engine.begin() as conn:
        Seeder(conn).deal(
            "新しい静かな案件", owner_id=ids["alice"], created_at=ago(60), updated_at=ago(60)
        )
    later = run_all(engine, cfg, outbox, as_of=JST_NOON + timedelta(hours=3))
    assert later.digests == 0 and sum(later.opened.values()) == 1
    tomorrow = run_all(engine, cfg, outbox, as_of=JST_NOON + timedelta(days=1))
    # Tomorrow: alice gets the waiting one, bob the meeting that became overdue overnight.
    assert tomorrow.digests == 2 and tomorrow.sent == 2

    if lang == "ja" and engine.dialect.name == "sqlite":
        _screenshot(html, tmp_path)


def _screenshot(html: str, tmp_path: Path) -> None:
    """The digest as a mail client shows it, rendered by headless Chromium (kept for review)."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("headless Chromium not installed")
    page = tmp_path / "digest.html"
    page.write_text(html, encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "reminder-digest-ja.png"
    shot.unlink(missing_ok=True)
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--window-size=900,1100",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000


def test_a_digest_in_doubt_after_data_neither_stops_the_run_nor_goes_twice(
    engine: Engine, tmp_path: Path
) -> None:
    """The link breaks after DATA for one rep's digest: the run goes on (the other reps get
    theirs), that digest is not resent in the run, and the SMTP server holds one copy. A later
    run whose channel can look it up marks it sent instead of sending it again."""
    import smtplib

    from connectors.mail.smtp_send import SmtpChannel
    from tests.support.push.push_smtp import smtp_server
    from warehouse.activation.ledger_schema import Reminder

    _seed(engine)
    cfg = make_cfg(
        tmp_path,
        segments={},
        reminders=RULES,
        outbound={"channels": {"outbox": {"type": "smtp", "host": "127.0.0.1", "port": 25}}},
    )
    with smtp_server() as (box, port):

        def channel(look: bool) -> SmtpChannel:
            return SmtpChannel(
                lambda: smtplib.SMTP("127.0.0.1", port, timeout=10),
                name="outbox",
                sent_check=box.has if look else None,
            )

        box.drop_after_data.add("alice@own.example")
        first = run_all(engine, cfg, channel(look=False), as_of=JST_NOON)
        assert [s.split(":")[0] for s in first.in_doubt] == ["alice@own.example"]
        assert first.digests >= 1  # bob's (and any other rep's) digest went out
        got = box.ids()
        assert len(got) == first.digests + 1 and max(got.values()) == 1
        with engine.connect() as conn:
            states = {d for (d,) in conn.execute(select(Reminder.delivery))}
        assert "sending" in states  # alice's reminders: in doubt, with their digest's id
        box.drop_after_data.clear()
        again = run_all(engine, cfg, channel(look=True), as_of=JST_NOON + timedelta(hours=1))
        assert again.recovered >= 1 and again.digests == 0 and not again.in_doubt
        assert box.ids() == got  # nothing sent twice
