"""Mail bodies as text a person reads: HTML to text, and the snippet of what is new.

Pure functions shared by every mail mapping (files, IMAP, Gmail, Graph previews).
"""

from __future__ import annotations

import html as _html
import re
from typing import Any

import lxml.html
from inscriptis import Inscriptis
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig
from lxml import etree

MAX_HTML_CHARS = 2_000_000
"""Characters of one HTML part converted at most; the rest is dropped before parsing."""
_CONFIG = ParserConfig(
    css=CSS_PROFILES["strict"], display_links=False, annotation_rules={"blockquote": ["quote"]}
)
_MAX_QUOTE_MARKS = 10
_TAG = re.compile(r"<[^<>]*>")
_XML_DECL = re.compile(r"^\s*<\?xml[^>]{0,200}>")


def html_to_text(html: str) -> str:
    """The text a person sees in an HTML body, laid out by inscriptis (tables, lists, blocks).

    Quoted mail (``<blockquote>``) is kept, its lines marked ``> `` as a plain-text reply
    would have them, so the snippet skips them and the full text still has them. Scripts,
    styles and the head are not text. A document nested past libxml2's depth limit (256),
    whose tree would come back cut short, is read again for its words only.
    """
    html = _XML_DECL.sub("", html[:MAX_HTML_CHARS], count=1)
    if not html.strip():
        return ""
    parser = lxml.html.HTMLParser(remove_comments=True, remove_pis=True)
    try:
        tree = lxml.html.document_fromstring(html, parser=parser)
        if not _cut_short(parser):
            laid_out = Inscriptis(tree, _CONFIG)
            text = laid_out.get_text()
            return _mark_quotes(text, [(a.start, a.end) for a in laid_out.get_annotations()])
    except (etree.ParserError, ValueError, RecursionError):
        pass
    return _plain_text(html)


def _cut_short(parser: Any) -> bool:
    """libxml2 stopped building the tree at its nesting limit (the rest of the text is lost)."""
    return any(e.type_name == "ERR_RESOURCE_LIMIT" for e in parser.error_log)


def _plain_text(html: str) -> str:
    """The text of a document nested past the layout's limits: no layout, only the words."""
    parser = lxml.html.HTMLParser(huge_tree=True, remove_comments=True, remove_pis=True)
    try:
        tree: Any = lxml.html.document_fromstring(html, parser=parser)
        etree.strip_elements(tree, "script", "style", "head", "template", with_tail=False)
        if not _cut_short(parser):
            return "".join(tree.itertext())
    except (etree.ParserError, ValueError):
        pass
    # Deeper than even libxml2's huge-tree limit: the tags go, the text stays.
    return _html.unescape(_TAG.sub(" ", html))


def _mark_quotes(text: str, spans: list[tuple[int, int]]) -> str:
    """Prefix ``> `` to every line that starts inside a quoted span, once per nesting level.

    One sweep over the span edges in order: linear in lines plus spans.
    """
    if not spans:
        return text
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    out: list[str] = []
    pos = depth = i = 0
    for line in text.split("\n"):
        while i < len(edges) and edges[i][0] <= pos:
            depth += edges[i][1]
            i += 1
        marks = "> " * min(depth, _MAX_QUOTE_MARKS)
        out.append(marks + line if depth > 0 and line.strip() else line)
        pos += len(line) + 1
    return "\n".join(out)


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
