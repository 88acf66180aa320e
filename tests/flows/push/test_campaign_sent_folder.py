"""Crash recovery asks a real IMAP Sent folder (Dovecot) for the Message-ID."""

from __future__ import annotations

import imaplib

from connectors.mail.smtp_send import imap_sent_check
from tests.support.servers import PASSWORD, Dovecot

MID = "<kz.news.1.42.abcdef012345@own.example>"


def _message(mid: str) -> bytes:
    return (
        f"From: sales@own.example\r\nTo: a@x.example\r\nSubject: hi\r\nMessage-ID: {mid}\r\n"
        "\r\nbody\r\n"
    ).encode()


def test_sent_folder_answers_by_message_id(dovecot_server: Dovecot) -> None:
    user = dovecot_server.new_user()
    conn = dovecot_server.login(user)
    conn.create("Sent")
    conn.logout()
    dovecot_server.append(user, "Sent", _message(MID))

    check = imap_sent_check(lambda: dovecot_server.login(user, PASSWORD), "Sent")
    assert check(MID) is True
    assert check("<kz.news.1.43.000000000000@own.example>") is False
    assert check('<odd"quote\\@own.example>') is False

    missing = imap_sent_check(lambda: dovecot_server.login(user, PASSWORD), "Gesendet")
    assert missing(MID) is None  # no such folder: cannot tell, never "not sent"

    def refused() -> imaplib.IMAP4:
        return dovecot_server.login(user, "wrong password")

    assert imap_sent_check(refused)(MID) is None
