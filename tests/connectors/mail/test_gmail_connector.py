"""Gmail connector on the real API surface: googleapiclient built offline from its shipped
discovery document, responses scripted in Gmail's JSON shapes (including its error bodies)."""

from __future__ import annotations

import json

import pytest

from connectors.mail.gmail import GmailCursor, GmailOptions, messages
from connectors.throttle import RetryPolicy, TokenBucket
from kizuna.errors import AuthError, ResyncRequired, TransientError
from tests.support.fakes.google_fakes import (
    NOT_FOUND,
    RATE_403,
    RATE_429,
    Script,
    gmail_metadata,
    gmail_raw,
    ok,
    rfc822,
    service,
)

ACCOUNT = "hanako@ourco.co.jp"


def opts(sleeps: list[float], **kw: object) -> GmailOptions:
    policy = RetryPolicy(max_retries=2, sleep=sleeps.append, rand=lambda: 0.5)
    budget = TokenBucket(1000.0, 10_000.0, clock=lambda: 0.0, sleep=sleeps.append)
    return GmailOptions(account=ACCOUNT, policy=policy, budget=budget, **kw)  # type: ignore[arg-type]


def test_full_sync_lists_fetches_and_ends_a_snapshot() -> None:
    m = {i: rfc822(f"<m{i}@customer.co.jp>") for i in (1, 2, 3)}
    script = Script(
        [
            ok({"emailAddress": ACCOUNT, "messagesTotal": 3, "historyId": "1000"}),
            ok(
                {
                    "messages": [{"id": "m1", "threadId": "tm1"}, {"id": "m2", "threadId": "tm2"}],
                    "nextPageToken": "page-2",
                    "resultSizeEstimate": 3,
                }
            ),
            ok(gmail_raw("m1", m[1])),
            ok(gmail_raw("m2", m[2], labels=["SENT"])),
            ok({"messages": [{"id": "m3", "threadId": "tm3"}], "resultSizeEstimate": 1}),
            ok(gmail_raw("m3", m[3], labels=["TRASH"])),
        ]
    )
    pages = list(messages(service("gmail", "v1", script), None, opts([])))

    assert [p.cursor for p in pages] == [
        GmailCursor(history_id="1000", phase="full", page_token="page-2"),
        GmailCursor(history_id="1000", phase="incremental"),
    ]
    assert [r["id"] for r in pages[0].records] == ["m1", "m2"]
    assert pages[0].records[0]["raw"]  # format=raw: the whole message
    assert pages[1].records == [] and pages[1].deleted == ["m3"]  # trashed → gone
    assert [p.snapshot_end for p in pages] == [False, True]
    assert script.paths()[0].endswith("/users/me/profile")
    assert script.params(1)["q"] == "-in:chats -in:drafts"
    assert script.params(2)["format"] == "raw"
    assert script.params(4)["pageToken"] == "page-2"


def test_resumed_full_sync_is_not_a_whole_snapshot() -> None:
    script = Script([ok({"messages": [], "resultSizeEstimate": 0})])
    cur = GmailCursor(history_id="1000", phase="full", page_token="page-2")
    pages = list(messages(service("gmail", "v1", script), cur, opts([])))
    assert len(pages) == 1 and not pages[0].snapshot_end
    assert pages[0].cursor == GmailCursor(history_id="1000")
    assert script.params(0)["pageToken"] == "page-2"


def test_headers_only_asks_for_metadata() -> None:
    script = Script(
        [
            ok({"historyId": "7"}),
            ok({"messages": [{"id": "m1", "threadId": "tm1"}]}),
            ok(gmail_metadata("m1", rfc822("<m1@x.jp>"))),
        ]
    )
    pages = list(messages(service("gmail", "v1", script), None, opts([], headers_only=True)))
    assert script.params(2)["format"] == "metadata"
    assert "q" not in script.params(1)  # the metadata scope refuses a search query
    assert "raw" not in pages[0].records[0]


def test_history_labels_trash_and_permanent_deletes() -> None:
    script = Script(
        [
            ok(
                {
                    "history": [
                        {
                            "id": "1001",
                            "messages": [{"id": "n1", "threadId": "tn1"}],
                            "messagesAdded": [
                                {"message": {"id": "n1", "threadId": "tn1", "labelIds": ["INBOX"]}}
                            ],
                        },
                        {
                            "id": "1002",
                            "messages": [{"id": "m1", "threadId": "tm1"}],
                            "labelsAdded": [
                                {
                                    "message": {
                                        "id": "m1",
                                        "threadId": "tm1",
                                        "labelIds": ["TRASH"],
                                    },
                                    "labelIds": ["TRASH"],
                                }
                            ],
                        },
                    ],
                    "nextPageToken": "h2",
                    "historyId": "1010",
                }
            ),
            ok(gmail_raw("n1", rfc822("<n1@x.jp>"))),
            ok(
                {
                    "history": [
                        {
                            "id": "1005",
                            "messages": [{"id": "m2", "threadId": "tm2"}],
                            "messagesDeleted": [{"message": {"id": "m2", "threadId": "tm2"}}],
                        },
                        {
                            "id": "1006",
                            "messages": [{"id": "m4", "threadId": "tm4"}],
                            "labelsRemoved": [
                                {
                                    "message": {
                                        "id": "m4",
                                        "threadId": "tm4",
                                        "labelIds": ["INBOX"],
                                    },
                                    "labelIds": ["UNREAD"],
                                }
                            ],
                        },
                        {
                            "id": "1007",
                            "messages": [{"id": "m5", "threadId": "tm5"}],
                            "labelsAdded": [
                                {
                                    "message": {"id": "m5", "threadId": "tm5"},
                                    "labelIds": ["Label_7"],
                                }
                            ],
                        },
                    ],
                    "historyId": "1010",
                }
            ),
            ok(gmail_raw("m5", rfc822("<m5@x.jp>"), labels=["INBOX", "Label_7"])),
        ]
    )
    pages = list(messages(service("gmail", "v1", script), GmailCursor(history_id="1000"), opts([])))

    assert script.params(0)["startHistoryId"] == "1000"
    assert script.params(2)["startHistoryId"] == "1000"
    assert script.params(2)["pageToken"] == "h2"
    # mid-stream cursor: the last history record covered; last page: the response's historyId
    assert [p.cursor.history_id for p in pages] == ["1002", "1010"]
    assert [r["id"] for r in pages[0].records] == ["n1"]
    assert pages[0].deleted == ["m1"]  # trashed: dropped without a fetch
    # m4 was only read (UNREAD removed): nothing fetched; m5 got a user label: fetched again
    assert [r["id"] for r in pages[1].records] == ["m5"]
    assert pages[1].deleted == ["m2"]  # permanent delete: not fetched
    assert script.remaining == 0


def test_message_deleted_between_history_and_get_is_a_delete() -> None:
    script = Script(
        [
            ok(
                {
                    "history": [
                        {"id": "5", "messagesAdded": [{"message": {"id": "gone", "threadId": "t"}}]}
                    ],
                    "historyId": "6",
                }
            ),
            NOT_FOUND,
        ]
    )
    pages = list(messages(service("gmail", "v1", script), GmailCursor(history_id="4"), opts([])))
    assert pages[0].deleted == ["gone"] and pages[0].records == []


def test_stale_history_id_404_asks_for_a_resync() -> None:
    script = Script([NOT_FOUND])
    with pytest.raises(ResyncRequired):
        list(messages(service("gmail", "v1", script), GmailCursor(history_id="1"), opts([])))


def test_429_retry_after_is_honoured_then_succeeds() -> None:
    sleeps: list[float] = []
    script = Script([RATE_429, ok({"historyId": "9"})])
    pages = list(
        messages(service("gmail", "v1", script), GmailCursor(history_id="8"), opts(sleeps))
    )
    assert pages[0].cursor.history_id == "9"
    assert sleeps == [3.0]  # Retry-After: 3 beats the jittered backoff (0.5 s)


def test_403_rate_limit_gives_up_with_transient_error() -> None:
    sleeps: list[float] = []
    script = Script([RATE_403, RATE_403, RATE_403])
    with pytest.raises(TransientError) as info:
        list(messages(service("gmail", "v1", script), GmailCursor(history_id="8"), opts(sleeps)))
    assert "throttled (403)" in str(info.value) and ACCOUNT in str(info.value)
    assert info.value.retry_after is not None
    assert sleeps == [0.5, 1.0]  # full jitter at rand=0.5: 0.5 * 1, 0.5 * 2
    assert script.remaining == 0


def test_revoked_oauth_token_names_the_account_and_hides_the_token() -> None:
    from google.oauth2.credentials import Credentials

    creds = Credentials(
        token=None,
        refresh_token="1//refresh-SECRET-abc",
        client_id="cid.apps.googleusercontent.com",
        client_secret="client-SECRET-xyz",
        token_uri="https://oauth2.googleapis.com/token",
    )
    body = {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
    script = Script([({"status": "400"}, json.dumps(body))])
    svc = service("gmail", "v1", script, credentials=creds)
    with pytest.raises(AuthError) as info:
        list(messages(svc, None, opts([], fix=f"Re-authorise {ACCOUNT} with `kizuna auth`.")))
    text = str(info.value)
    assert ACCOUNT in text and "invalid_grant" in text and "Re-authorise" in text
    assert "SECRET" not in text
    assert script.requests[0][1] == "https://oauth2.googleapis.com/token"


def test_quota_units_are_taken_per_call_from_the_account_budget() -> None:
    taken: list[float] = []

    class Recording(TokenBucket):
        def take(self, units: float = 1.0) -> float:
            taken.append(units)
            return 0.0

    script = Script(
        [
            ok({"historyId": "1"}),
            ok({"messages": [{"id": "a"}, {"id": "b"}]}),
            ok(gmail_raw("a", rfc822("<a@x.jp>"))),
            ok(gmail_raw("b", rfc822("<b@x.jp>"))),
        ]
    )
    o = GmailOptions(
        account=ACCOUNT, budget=Recording(1.0, 1.0), policy=RetryPolicy(sleep=[].append)
    )
    list(messages(service("gmail", "v1", script), None, o))
    assert taken == [1, 5, 5, 5]  # getProfile, messages.list, messages.get × 2
    taken.clear()
    script = Script([ok({"historyId": "2"})])
    list(messages(service("gmail", "v1", script), GmailCursor(history_id="1"), o))
    assert taken == [2]  # history.list


def test_mapping_raw_and_metadata_give_the_same_identity() -> None:
    from kizuna.errors import BadRecord
    from mappings.mail.gmail import message_activity

    raw = rfc822("<Same.1@Customer.co.jp>", to="佐藤 花子 <hanako@ourco.co.jp>")
    full = message_activity(
        gmail_raw("m1", raw, labels=["INBOX", "IMPORTANT"]), own_domains=["ourco.co.jp"]
    )
    meta = message_activity(
        gmail_metadata("m1", raw), own_domains=["ourco.co.jp"], headers_only=True
    )
    assert full.source_id == meta.source_id == "m1"
    assert (full.key, full.thread_key, full.direction) == (
        meta.key,
        meta.thread_key,
        meta.direction,
    )
    assert full.key == "mail:same.1@customer.co.jp"
    assert full.participants == meta.participants
    assert full.snippet == "先日はありがとうございました。" and meta.snippet is None
    assert full.attributes["gmail"] == {"thread_id": "tm1", "labels": ["INBOX"]}
    # headers-only asked but raw given: the body is not read
    assert message_activity(gmail_raw("m1", raw), own_domains=[], headers_only=True).snippet is None
    with pytest.raises(BadRecord):
        message_activity({"id": "m2", "raw": "!!not base64!!"}, own_domains=[])


def test_a_mailed_invitation_through_gmail_yields_its_meeting() -> None:
    """The same records as from IMAP or files: the mail, then the meeting, one source id."""
    from mappings.mail.gmail import message_records
    from tests.flows.sources.test_mail_maildir_cli import INVITE

    acts = message_records(gmail_raw("g7", INVITE), own_domains=["ourco.co.jp"])
    assert [(a.key, a.kind, a.source_id) for a in acts] == [
        ("mail:inv1@client.co.jp", "invitation", "g7"),
        ("meeting:mtg-1@client.co.jp", "meeting", "g7"),
    ]
    assert acts[0].attributes["gmail"]["thread_id"] == "tg7"


def test_stored_page_token_refused_restarts_instead_of_blocking() -> None:
    from tests.support.fakes.google_fakes import error

    bad_token = error(400, "invalidArgument", "Invalid pageToken", google_status="INVALID_ARGUMENT")
    cur = GmailCursor(history_id="1000", phase="full", page_token="stale")
    with pytest.raises(ResyncRequired):
        list(messages(service("gmail", "v1", Script([bad_token])), cur, opts([])))
    # without a stored token a 400 is a real error, not a reason to start over
    from kizuna.errors import FatalError

    with pytest.raises(FatalError):
        list(
            messages(
                service("gmail", "v1", Script([ok({"historyId": "1"}), bad_token])), None, opts([])
            )
        )


def _service_account_key() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "kizuna-test",
            "private_key_id": "k1",
            "private_key": pem,
            "client_email": "kizuna-sync@kizuna-test.iam.gserviceaccount.com",
            "client_id": "104200000000000000001",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )


def test_domain_wide_delegation_impersonates_the_account() -> None:
    import base64
    from urllib.parse import parse_qs

    from pydantic import SecretStr

    from connectors.google_api import GMAIL_READONLY, GoogleAuth

    auth = GoogleAuth(service_account_key=SecretStr(_service_account_key()))
    creds = auth.credentials_for(ACCOUNT, [GMAIL_READONLY])
    script = Script(
        [
            ok({"access_token": "ya29.delegated", "expires_in": 3599, "token_type": "Bearer"}),
            ok({"emailAddress": ACCOUNT, "historyId": "5"}),
            ok({"resultSizeEstimate": 0}),
        ]
    )
    pages = list(messages(service("gmail", "v1", script, credentials=creds), None, opts([])))
    assert pages[0].cursor.history_id == "5"
    form = parse_qs(script.bodies[0].decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    claims_b64 = form["assertion"][0].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=" * (-len(claims_b64) % 4)))
    assert claims["sub"] == ACCOUNT and claims["scope"] == GMAIL_READONLY
    assert script.headers[1]["authorization"] == "Bearer ya29.delegated"

    # Delegation not granted in the Admin console: the fix says where to grant it.
    refused = {
        "error": "unauthorized_client",
        "error_description": "Client is unauthorized to retrieve access tokens using this method, "
        "or client not authorized for any of the scopes requested.",
    }
    script = Script([({"status": "401"}, json.dumps(refused))])
    creds = auth.credentials_for(ACCOUNT, [GMAIL_READONLY])
    with pytest.raises(AuthError) as info:
        svc = service("gmail", "v1", script, credentials=creds)
        list(messages(svc, None, opts([], fix=auth.fix_for(ACCOUNT))))
    text = str(info.value)
    assert "unauthorized_client" in text and ACCOUNT in text and "Domain-wide delegation" in text
    assert "PRIVATE KEY" not in text


def test_big_mail_is_cut_into_pages_under_the_previous_cursor() -> None:
    script = Script(
        [
            ok({"historyId": "70"}),
            ok({"messages": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}),
            ok(gmail_raw("a", rfc822("<a@x.jp>", body="x" * 900))),
            ok(gmail_raw("b", rfc822("<b@x.jp>", body="y" * 10))),
            ok(gmail_raw("c", rfc822("<c@x.jp>", body="z" * 10))),
        ]
    )
    pages = list(messages(service("gmail", "v1", script), None, opts([], max_page_bytes=1000)))
    assert [[r["id"] for r in p.records] for p in pages] == [["a"], ["b", "c"]]
    assert pages[0].cursor == GmailCursor(history_id="70", phase="full")  # before the list page
    assert pages[1].cursor == GmailCursor(history_id="70") and pages[1].snapshot_end
