"""How a text export is written: its encoding, its delimiter, or that it is no text at all.

Exports arrive as Excel and other tools write them: UTF-8 (with or without BOM), cp932 (what
Excel in Japan calls Shift_JIS), EUC-JP from older Unix systems, and UTF-16 with tabs (Excel's
"Unicode テキスト"). The common cases are settled by a fast path that reads only the head of
the file (a BOM, valid UTF-8, bytes that only cp932 can read); anything else goes to
charset-normalizer, a kept library made for the job. A file that is not text at all (a PDF, an
image, a workbook under a .csv name) is refused with one line, never echoed to the terminal.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

from kizuna.errors import FatalError

_SNIFF_LIMIT = 8 << 20
_SAMPLE = 1 << 16
_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_MAGIC = (
    (b"PK\x03\x04", "a zip archive or .xlsx workbook"),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
)
ALIASES = {
    "auto": "auto",
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "utf-8-sig": "utf-8-sig",
    "utf8-sig": "utf-8-sig",
    "shift-jis": "cp932",
    "shift_jis": "cp932",
    "sjis": "cp932",
    "cp932": "cp932",
    "windows-31j": "cp932",
    "ms932": "cp932",
    "euc-jp": "euc-jp",
    "euc_jp": "euc-jp",
    "eucjp": "euc-jp",
    "utf-16": "utf-16",
    "utf16": "utf-16",
    "utf-16-le": "utf-16-le",
    "utf-16le": "utf-16-le",
    "utf-16-be": "utf-16-be",
    "utf-16be": "utf-16-be",
}
"""Every encoding name the workspace accepts, to the codec Kizuna reads it with."""

DELIMITERS = {"auto": "", "comma": ",", "tab": "\t", "semicolon": ";"}


@dataclass(frozen=True)
class TextFormat:
    """The codec and delimiter a text export is read with, and whether they were guessed."""

    encoding: str
    delimiter: str
    detected: bool

    def describe(self) -> str:
        """For messages: 'read as cp932 (detected), tab-separated'."""
        how = "detected" if self.detected else "from `encoding:`"
        sep = {",": "comma", "\t": "tab", ";": "semicolon"}.get(self.delimiter, self.delimiter)
        return f"read as {self.encoding} ({how}), {sep}-separated"


def refuse_binary(path: Path, head: bytes) -> None:
    """A file that is not text stops the stream with one line naming what it looks like."""
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise FatalError(
                f"{path}: not a text export: the file looks like {what}; "
                "export the sheet as CSV or .xlsx and point `path:` at it"
            )
    if any(head.startswith(bom) for bom, _ in _BOMS) or _utf16_without_bom(head):
        return
    sample = head[:4096]
    controls = sum(1 for b in sample if b < 9 or 13 < b < 32)
    if b"\x00" in sample or (sample and controls / len(sample) > 0.05):
        raise FatalError(
            f"{path}: not a text export ({controls} control bytes in the first "
            f"{len(sample)}); export the sheet as CSV or .xlsx and point `path:` at it"
        )


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 without a BOM: ASCII text leaves a zero in every other byte."""
    sample = head[:2048]
    if len(sample) < 4:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > len(odd) * 0.4 and even.count(0) < len(even) * 0.05:
        return "utf-16-le"
    if even.count(0) > len(even) * 0.4 and odd.count(0) < len(odd) * 0.05:
        return "utf-16-be"
    return None


def _sample(path: Path) -> tuple[bytes, bytes]:
    """The file's head, and the first block holding non-ASCII bytes (cut at a line end)."""
    with path.open("rb") as f:
        head = f.read(_SAMPLE)
        block, read = head, len(head)
        while block.isascii() and read < _SNIFF_LIMIT:
            nxt = f.read(_SAMPLE)
            if not nxt:
                break
            block, read = nxt, read + len(nxt)
        if not block.isascii():
            block += f.readline()
    return head, block


def detect_encoding(path: Path) -> str:
    """The codec a text export is written in; the fast path first, charset-normalizer after."""
    head, block = _sample(path)
    refuse_binary(path, head)
    for bom, enc in _BOMS:
        if head.startswith(bom):
            return enc
    utf16 = _utf16_without_bom(head)
    if utf16:
        return utf16
    if block.isascii():
        return "utf-8"
    if _decodes(block, "utf-8"):
        return "utf-8"
    cp932, euc = _decodes(block, "cp932"), _decodes(block, "euc-jp")
    if cp932 and not euc:
        return "cp932"
    if euc and not cp932:
        return "euc-jp"
    return _normalizer_guess(block) or "cp932"


def _decodes(block: bytes, codec: str) -> bool:
    """Whether a sample decodes, allowing a character cut at the sample's end."""
    try:
        codecs.getincrementaldecoder(codec)().decode(block, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _normalizer_guess(block: bytes) -> str | None:
    """Japanese text that two codecs can read: let charset-normalizer judge which reads well."""
    from charset_normalizer import from_bytes

    best = from_bytes(block, cp_isolation=["cp932", "euc_jp", "utf_8"]).best()
    if best is None:
        best = from_bytes(block).best()
    if best is None:
        return None
    name = best.encoding.replace("_", "-")
    return {"shift-jis": "cp932", "euc-jis-2004": "euc-jp"}.get(name, name)


def resolve(path: Path, encoding: str, delimiter: str = "auto") -> TextFormat:
    """The format to read ``path`` with: the configured codec, or the detected one."""
    enc = ALIASES.get(encoding.strip().lower())
    if enc is None:
        raise FatalError(
            f"unsupported encoding {encoding!r} for {path}; use one of "
            + ", ".join(sorted({v for v in ALIASES.values()}))
        )
    detected = enc == "auto"
    if detected:
        enc = detect_encoding(path)
    else:
        with path.open("rb") as f:
            head = f.read(_SAMPLE)
        refuse_binary(path, head)
    sep = DELIMITERS.get(delimiter, delimiter)
    if not sep:
        sep = _delimiter(path, enc)
    return TextFormat(enc, sep, detected)


def _delimiter(path: Path, encoding: str) -> str:
    """Tab when the header line has more tabs than commas (and for .tsv), else comma."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    with path.open("r", encoding=encoding, errors="replace", newline="") as f:
        first = f.readline(1 << 16)
    return "\t" if first.count("\t") > first.count(",") else ","


__all__ = ["ALIASES", "DELIMITERS", "TextFormat", "detect_encoding", "refuse_binary", "resolve"]
