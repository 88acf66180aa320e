"""The demo mailbox: threads between staff and customers, as Japanese mail programs write them.

Messages are built as bytes by hand (not with ``email.message``) to reproduce what arrives
in real mailboxes: ISO-2022-JP in 7 bit, Shift_JIS labelled mail carrying cp932-only
characters (①, ～, ㈱) in base64 or raw 8 bit, UTF-8 in base64 or quoted-printable,
RFC 2047 encoded names and subjects, replies with In-Reply-To/References and quoted text,
a few customers writing from a private address, and two broken messages.

Two mbox files: ``inbox.mbox`` (what staff received) and ``sent.mbox`` (what they sent);
mail between staff is in both, as it is in real exports.
"""

from __future__ import annotations

import base64
import quopri
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from flows.demo.world import OWN_DOMAIN, OWN_NAME, PRODUCTS, Contact, Staff, World

JST = ZoneInfo("Asia/Tokyo")
MAILERS = {
    "iso-2022-jp": ("Becky! ver. 2.81.04", "Microsoft Outlook 16.0", "Thunderbird 115.8"),
    "shift_jis": ("Microsoft Outlook Express 6.00.2900.5512", "Shuriken 2018", "AL-Mail32"),
    "utf-8": ("Microsoft Outlook 16.0", "Apple Mail (2.3774)", "Thunderbird 128.3", ""),
}
MALFORMED = 2


@dataclass(frozen=True)
class Party:
    name: str
    email: str
    charset: str
    company: str
    family: str
    internal: bool
    english: bool = False


@dataclass
class Mail:
    sender: Party
    to: list[Party]
    cc: list[Party]
    subject: str
    body: str
    date: datetime
    message_id: str
    in_reply_to: str | None
    references: list[str]
    charset: str
    html: bool
    transfer: str
    mailer: str


def _staff_party(s: Staff, charset: str = "utf-8") -> Party:
    return Party(s.name, s.email, charset, OWN_NAME, s.family, True)


def _contact_party(c: Contact, personal: bool = False) -> Party:
    email = c.personal_email if personal and c.personal_email else c.email
    return Party(c.name, email, c.charset, c.company.name, c.family, False, c.company.english)


# -- encoding ------------------------------------------------------------------------------

_CODEC = {"iso-2022-jp": "iso2022_jp", "shift_jis": "cp932", "utf-8": "utf-8"}
_LABEL = {"iso-2022-jp": "ISO-2022-JP", "shift_jis": "Shift_JIS", "utf-8": "UTF-8"}


def _encodable(text: str, charset: str) -> bool:
    try:
        text.encode(_CODEC[charset])
    except UnicodeEncodeError:
        return False
    return True


def encoded_words(text: str, charset: str, q: bool = False) -> str:
    """RFC 2047 words, a few characters each so no word passes 75 octets."""
    if text.isascii():
        return text
    label = _LABEL[charset]
    words = []
    step = 8 if charset == "iso-2022-jp" else 12
    for i in range(0, len(text), step):
        chunk = text[i : i + step].encode(_CODEC[charset])
        if q:
            enc = quopri.encodestring(chunk, header=True).decode("ascii").replace("=\n", "")
            words.append(f"=?{label}?Q?{enc}?=")
        else:
            words.append(f"=?{label}?B?{base64.b64encode(chunk).decode('ascii')}?=")
    return "\n ".join(words)


def _address(p: Party, charset: str, q: bool) -> str:
    if not p.name:
        return p.email
    if p.name.isascii():
        return f'"{p.name}" <{p.email}>'
    return f"{encoded_words(p.name, charset, q)} <{p.email}>"


def _b64_lines(data: bytes) -> bytes:
    enc = base64.b64encode(data)
    return b"\n".join(enc[i : i + 76] for i in range(0, len(enc), 76)) + b"\n"


def _body_part(text: str, charset: str, transfer: str, subtype: str = "plain") -> bytes:
    label = _LABEL[charset]
    raw = text.replace("\r\n", "\n").encode(_CODEC[charset])
    head = f'Content-Type: text/{subtype}; charset="{label}"\nContent-Transfer-Encoding: {transfer}\n\n'
    if transfer == "base64":
        payload = _b64_lines(raw)
    elif transfer == "quoted-printable":
        payload = quopri.encodestring(raw)
    else:
        payload = raw if raw.endswith(b"\n") else raw + b"\n"
    return head.encode("ascii") + payload


def _html(text: str) -> str:
    paras = "".join(
        f"<p>{line.replace('&', '&amp;').replace('<', '&lt;')}</p>" if line else "<br>"
        for line in text.split("\n")
    )
    return f'<html><head><meta charset="utf-8"></head><body>{paras}</body></html>\n'


def render(m: Mail) -> bytes:
    charset = m.charset
    q = charset == "utf-8" and m.transfer == "quoted-printable"
    lines = [
        f"Return-Path: <{m.sender.email}>",
        f"From: {_address(m.sender, charset, q)}",
        "To: " + ",\n ".join(_address(p, charset, q) for p in m.to),
    ]
    if m.cc:
        lines.append("Cc: " + ",\n ".join(_address(p, charset, q) for p in m.cc))
    lines += [
        f"Subject: {encoded_words(m.subject, charset, q)}",
        f"Date: {m.date.strftime('%a, %d %b %Y %H:%M:%S %z')}",
        f"Message-ID: <{m.message_id}>",
    ]
    if m.in_reply_to:
        lines.append(f"In-Reply-To: <{m.in_reply_to}>")
        lines.append("References: " + "\n ".join(f"<{r}>" for r in m.references))
    if m.mailer:
        lines.append(f"X-Mailer: {m.mailer}")
    lines.append("MIME-Version: 1.0")
    head = "\n".join(lines).encode("ascii") + b"\n"
    if m.html:
        boundary = f"----=_Part_{m.message_id.split('@')[0][-12:]}"
        parts = [
            _body_part(m.body, charset, m.transfer),
            _body_part(_html(m.body), charset, m.transfer, "html"),
        ]
        body = b"".join(f"--{boundary}\n".encode() + p + b"\n" for p in parts)
        body += f"--{boundary}--\n".encode()
        return (
            head
            + f'Content-Type: multipart/alternative;\n boundary="{boundary}"\n\n'.encode()
            + b"This is a multi-part message in MIME format.\n\n"
            + body
        )
    return head + _body_part(m.body, charset, m.transfer)


# -- content -------------------------------------------------------------------------------

SUBJECTS = (
    "{deal}のご提案について",
    "お見積りの件（{product}）",
    "打ち合わせ日程のご相談",
    "資料送付のご連絡",
    "【ご確認】契約書ドラフト",
    "{product}導入に関するご質問",
    "先日のお打ち合わせのお礼",
    "請求書送付のご案内",
)
EN_SUBJECTS = ("Proposal for {product}", "Meeting follow-up", "Quotation request", "Contract draft")
INTERNAL_SUBJECTS = (
    "【共有】{company}様 案件状況",
    "週報（{date}）",
    "【相談】{company}様 値引き条件",
    "来週の営業会議について",
)
LINES = (
    "先日はお忙しいところお時間をいただき、誠にありがとうございました。",
    "ご依頼いただいておりましたお見積書を添付いたしましたのでご確認ください。",
    "来週のお打ち合わせですが、下記の日程でご都合はいかがでしょうか。",
    "ご質問いただいた件について、担当部署に確認のうえ回答いたします。",
    "導入スケジュールについて社内で検討しております。",
    "契約書のドラフトを確認いたしました。一点だけご相談がございます。",
)
LISTS = {
    "shift_jis": ("①初期費用のお見積り", "②導入スケジュール（4月～6月）", "③保守体制について"),
    "other": ("1. 初期費用のお見積り", "2. 導入スケジュール（4月〜6月）", "3. 保守体制について"),
}
EN_LINES = (
    "Thank you for your time on our call last week.",
    "Please find the quotation attached for your review.",
    "Could we schedule a follow-up meeting next week?",
)


def _text(w: World, sender: Party, to: Party, charset: str) -> str:
    r = w.rng
    if sender.english or to.english:
        return (
            f"Dear {to.name.split()[0] if to.name else 'team'},\n\n"
            f"{r.choice(EN_LINES)}\n{r.choice(EN_LINES)}\n\nBest regards,\n{sender.name}\n"
        )
    bullets = LISTS["shift_jis" if charset == "shift_jis" else "other"]
    body = [f"{to.company}", f"{to.family}様", "", "いつもお世話になっております。"]
    body.append(f"{sender.company}の{sender.family}です。")
    body += ["", r.choice(LINES)]
    if r.random() < 0.4:
        body += ["", "下記の点についてご確認をお願いいたします。", *bullets]
    body += [
        "",
        "何卒よろしくお願いいたします。",
        "",
        "--",
        sender.company,
        sender.name,
        sender.email,
    ]
    return "\n".join(body) + "\n"


def _quote(prev: Mail, charset: str) -> str:
    when = prev.date.strftime("%Y/%m/%d %H:%M")
    head = (
        f"On {when}, {prev.sender.name} <{prev.sender.email}> wrote:"
        if prev.sender.english
        else f"{when}、{prev.sender.name} <{prev.sender.email}> のメール:"
    )
    quoted = "\n".join(f"> {line}" for line in prev.body.splitlines()[:12])
    return f"\n{head}\n{quoted}\n"


def _transfer(w: World, charset: str) -> str:
    if charset == "iso-2022-jp":
        return "7bit"
    if charset == "shift_jis":
        return "base64" if w.rng.random() < 0.7 else "8bit"
    return "base64" if w.rng.random() < 0.5 else "quoted-printable"


def _fit_charset(charset: str, *texts: str) -> str:
    return charset if all(_encodable(t, charset) for t in texts) else "utf-8"


# -- threads -------------------------------------------------------------------------------


class _Maker:
    def __init__(self, w: World, start: datetime) -> None:
        self.w = w
        self.start = start
        self.n = 0

    def message_id(self, sender: Party, when: datetime) -> str:
        self.n += 1
        token = f"{when:%Y%m%d%H%M%S}.{self.w.rng.getrandbits(40):010x}.{self.n}"
        return f"{token}@{sender.email.split('@')[1]}"

    def thread(self, a: Party, b: Party, subject: str, length: int, cc: list[Party]) -> list[Mail]:
        r = self.w.rng
        when = self.start + timedelta(
            days=r.randrange(0, 178), hours=r.randrange(0, 9), minutes=r.randrange(60)
        )
        out: list[Mail] = []
        sender, receiver = a, b
        for i in range(length):
            charset = sender.charset
            body = _text(self.w, sender, receiver, charset)
            if out:
                body += _quote(out[-1], charset)
            subj = subject if i == 0 else r.choice(("Re: ", "RE: ", "Re: ")) + subject
            charset = _fit_charset(
                charset, body, subj, sender.name, receiver.name, *(p.name for p in cc)
            )
            mid = self.message_id(sender, when)
            refs = [*out[-1].references, out[-1].message_id] if out else []
            out.append(
                Mail(
                    sender=sender,
                    to=[receiver],
                    cc=cc,
                    subject=subj,
                    body=body,
                    date=when,
                    message_id=mid,
                    in_reply_to=out[-1].message_id if out else None,
                    references=refs[-10:],
                    charset=charset,
                    html=charset == "utf-8" and r.random() < 0.25,
                    transfer=_transfer(self.w, charset),
                    mailer=r.choice(MAILERS[charset]),
                )
            )
            sender, receiver = receiver, sender
            when += timedelta(hours=r.randrange(1, 40), minutes=r.randrange(60))
        return out


def build_mail(w: World, count: int) -> list[Mail]:
    r = w.rng
    start = datetime(w.today.year, w.today.month, w.today.day, 9, 0, tzinfo=JST) - timedelta(
        days=180
    )
    maker = _Maker(w, start)
    mails: list[Mail] = []
    staff = w.staff
    target = max(count - MALFORMED, 1)
    while len(mails) < target:
        roll = r.random()
        length = min(r.choice((1, 1, 2, 2, 3, 3, 4, 5, 6)), target - len(mails))
        if roll < 0.68:
            c = r.choice(w.contacts)
            owner = _staff_party(c.company.owner, r.choice(("utf-8", "utf-8", "iso-2022-jp")))
            personal = c.personal_email is not None and r.random() < 0.6
            customer = _contact_party(c, personal)
            cc: list[Party] = []
            if r.random() < 0.2:
                cc.append(_staff_party(staff[0]))
            colleagues = [x for x in w.by_company[c.company.domain] if x is not c]
            if colleagues and r.random() < 0.15:
                cc.append(_contact_party(r.choice(colleagues)))
            deals = [d for d in w.deals if d.company is c.company]
            deal = r.choice(deals).name if deals else f"{c.company.name}様向け{r.choice(PRODUCTS)}"
            pattern = r.choice(EN_SUBJECTS if c.company.english else SUBJECTS)
            subject = pattern.format(deal=deal, product=r.choice(PRODUCTS))
            first, second = (owner, customer) if r.random() < 0.6 else (customer, owner)
            mails += maker.thread(first, second, subject, length, cc)
        elif roll < 0.88:
            a, b = r.sample(staff, 2)
            comp = r.choice(w.companies)
            subject = r.choice(INTERNAL_SUBJECTS).format(
                company=comp.name, date=(start + timedelta(days=r.randrange(180))).strftime("%m/%d")
            )
            mails += maker.thread(_staff_party(a), _staff_party(b), subject, length, [])
        else:
            # A first contact from someone not in any export yet.
            fam, _, fr = w.ja.last_name_pair()
            giv, _, gr = w.ja.first_name_pair()
            domain = r.choice(("gmail.com", "yahoo.co.jp", f"{fr.lower()}-corp.co.jp"))
            who = Party(
                f"{fam} {giv}",
                f"{gr.lower()}.{fr.lower()}@{domain}",
                r.choice(("utf-8", "iso-2022-jp")),
                f"{fam}商会",
                fam,
                False,
            )
            subject = f"{r.choice(PRODUCTS)}についてのお問い合わせ"
            mails += maker.thread(
                who, _staff_party(r.choice(staff[1:])), subject, min(length, 2), []
            )
    return mails[:target]


def _malformed(w: World) -> list[tuple[str, bytes]]:
    when = datetime(w.today.year, w.today.month, w.today.day, 8, 0, tzinfo=JST)
    no_headers = (
        "これは転送時に壊れたメッセージです。ヘッダーがありません。\n".encode("cp932")
        + b"\x00\x01\x02 binary junk\n"
    )
    bad_date = (
        f"From: broken-client@{OWN_DOMAIN}\nTo: sales@{OWN_DOMAIN}\n"
        "Subject: =?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=\nDate: 2026/13/45 25:61\n"
        f"Message-ID: <broken-date.{w.seed}@{OWN_DOMAIN}>\nMIME-Version: 1.0\n"
        'Content-Type: text/plain; charset="ISO-2022-JP"\n\n'
    ).encode("ascii") + "日付が壊れています。\n".encode("iso2022_jp")
    return [
        (f"MAILER-DAEMON {when:%a %b %d %H:%M:%S %Y}", no_headers),
        (
            f"broken-client@{OWN_DOMAIN} {when:%a %b %d %H:%M:%S %Y}",
            bad_date,
        ),
    ]


def _mbox_entry(from_line: str, data: bytes) -> bytes:
    lines = data.split(b"\n")
    escaped = b"\n".join(b">" + ln if ln.startswith((b"From ", b">From ")) else ln for ln in lines)
    if not escaped.endswith(b"\n"):
        escaped += b"\n"
    return f"From {from_line}\n".encode("ascii") + escaped + b"\n"


def write_mail(w: World, folder: Path, count: int) -> int:
    """Write ``inbox.mbox`` and ``sent.mbox``; returns the number of distinct messages."""
    folder.mkdir(parents=True, exist_ok=True)
    mails = sorted(build_mail(w, count), key=lambda m: (m.date, m.message_id))
    inbox: list[bytes] = []
    sent: list[bytes] = []
    for m in mails:
        entry = _mbox_entry(
            f"{m.sender.email} {m.date.astimezone(JST):%a %b %d %H:%M:%S %Y}", render(m)
        )
        if m.sender.internal:
            sent.append(entry)
        if not m.sender.internal or any(p.internal for p in m.to):
            inbox.append(entry)
    broken = _malformed(w)
    inbox += [_mbox_entry(line, data) for line, data in broken]
    (folder / "inbox.mbox").write_bytes(b"".join(inbox))
    (folder / "sent.mbox").write_bytes(b"".join(sent))
    return len(mails) + len(broken)
