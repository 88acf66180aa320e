"""Mail bodies as text a person reads: HTML to text, and the snippet of what is new.

Pure functions shared by every mail mapping (files, IMAP, Gmail, Graph previews).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIP_TAGS = frozenset({"script", "style", "head", "title", "template"})
_BLOCK_TAGS = frozenset(
    {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "blockquote"}
)


class _TextOf(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0
        self._quote = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skip += 1
        elif tag == "blockquote":
            self._quote += 1
        if tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS and self._skip:
            self._skip -= 1
        elif tag == "blockquote" and self._quote:
            self._quote -= 1
        if tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip and not self._quote:
            self.out.append(data)


def html_to_text(html: str) -> str:
    """Visible text of an HTML body (quoted blockquotes, scripts and styles dropped)."""
    parser = _TextOf()
    parser.feed(html)
    parser.close()
    return "".join(parser.out)


_QUOTE_HEADER = re.compile(
    r"^(?:"
    r"-{2,}\s*(?:original message|forwarded message|元のメッセージ|転送メッセージ|"
    r"original|転送)\s*-{2,}.*"
    r"|_{10,}"
    r"|on .{1,200} wrote:"
    r"|.{0,200}(?:wrote|writes):"
    r"|.{0,200}(?:書きました|のメッセージ|さんは書きました|wrote)\s*[:：]?"
    r"|.{0,200}<[^<>@\s]+@[^<>\s]+>.{0,20}[:：]"
    r"|from:\s.*|差出人\s*[:：].*|送信者\s*[:：].*"
    r")\s*$",
    re.IGNORECASE,
)
_SIGNATURE = re.compile(r"^(?:--\s?|—{2,}|-{5,}.*|={5,}|＿{5,}|━{5,}|─{5,}|\*{5,})$")
_SPACES = re.compile(r"\s+")
SNIPPET_CHARS = 240
_SCAN_CHARS = 20_000


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str | None:
    """The new part of a mail body, whitespace-collapsed and cut to ``limit`` characters.

    Stops at the first quoted-reply header ("On … wrote:", "-----Original Message-----",
    「…さんは書きました:」) or signature delimiter; drops ``>`` quoted lines.
    """
    kept: list[str] = []
    for line in text[:_SCAN_CHARS].splitlines():
        s = line.strip()
        if s.startswith((">", "＞", "|>")):
            continue
        if kept and (_QUOTE_HEADER.match(s) or _SIGNATURE.match(line.rstrip())):
            break
        if not kept and _SIGNATURE.match(line.rstrip()):
            continue
        kept.append(s)
    out = _SPACES.sub(" ", " ".join(kept)).strip()
    if not out:
        return None
    return out[:limit].rstrip()
