"""Japanese charsets as mail programs really write them.

The standard codecs come first because they are what the sender meant on every system but
Windows (WAVE DASH stays U+301C); only bytes they reject get the Windows reading: JIS X 0208
rows — including NEC row 13 (①, ㈱) and the IBM extensions — mapped through cp932, as
CP50220/CP50221 (ISO-2022-JP) and CP51932 (EUC-JP) do.
"""

from __future__ import annotations

import re


def decode_iso2022jp(data: bytes) -> str:
    """ISO-2022-JP (with half-width katakana), else the Windows reading; UnicodeDecodeError
    when even that fails."""
    try:
        return data.decode("iso2022_jp_ext")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("iso2022_jp_2")
    except UnicodeDecodeError:
        pass
    return _iso2022jp_via_cp932(data)


_ESC = re.compile(rb"\x1b(\$@|\$B|\$\(B|\$\(D|\$\(Q|\$\(O|\(B|\(J|\(I|\(H|&@\x1b\$B)")


def _iso2022jp_via_cp932(data: bytes) -> str:
    """Read ISO-2022-JP as CP50221 does: JIS X 0208 rows (incl. NEC/IBM rows) through cp932."""
    out: list[str] = []
    mode = "ascii"
    pos = 0
    for m in _ESC.finditer(data):
        out.append(_jis_run(data[pos : m.start()], mode))
        seq = m.group(1)
        if seq in (b"(B", b"(J", b"(H"):
            mode = "ascii"
        elif seq == b"(I":
            mode = "kana"
        elif seq == b"$(D":
            mode = "x0212"
        else:
            mode = "x0208"
        pos = m.end()
    out.append(_jis_run(data[pos:], mode))
    return "".join(out)


def _jis_run(chunk: bytes, mode: str) -> str:
    if not chunk:
        return ""
    if mode == "ascii":
        if b"\x0e" in chunk:  # SO/SI half-width katakana (CP50222)
            return _so_si(chunk)
        return chunk.decode("ascii")
    if mode == "kana":
        return bytes(b | 0x80 if 0x21 <= b <= 0x5F else b for b in chunk).decode("cp932")
    if mode == "x0212":
        return (b"\x1b$(D" + chunk + b"\x1b(B").decode("iso2022_jp_2")
    sjis = bytearray()
    i = 0
    while i < len(chunk):
        b = chunk[i]
        if b in (0x0A, 0x0D):  # a line end without the switch back to ASCII
            sjis.append(b)
            i += 1
            continue
        if i + 1 >= len(chunk):
            raise UnicodeDecodeError("iso2022_jp", chunk, i, i + 1, "odd JIS byte count")
        sjis += _jis_to_sjis(b, chunk[i + 1], chunk)
        i += 2
    return sjis.decode("cp932")


def _so_si(chunk: bytes) -> str:
    out = bytearray()
    shifted = False
    for b in chunk:
        if b == 0x0E:
            shifted = True
        elif b == 0x0F:
            shifted = False
        else:
            out.append(b | 0x80 if shifted and 0x21 <= b <= 0x5F else b)
    return out.decode("cp932")


def _jis_to_sjis(hi: int, lo: int, chunk: bytes) -> bytes:
    if not (0x21 <= hi <= 0x7E and 0x21 <= lo <= 0x7E):
        raise UnicodeDecodeError("iso2022_jp", chunk, 0, len(chunk), "byte outside JIS range")
    s1 = ((hi + 1) >> 1) + (0x70 if hi <= 0x5E else 0xB0)
    if hi & 1:
        s2 = lo + 0x1F
        if s2 >= 0x7F:
            s2 += 1
    else:
        s2 = lo + 0x7E
    return bytes((s1, s2))


def decode_eucjp(data: bytes) -> str:
    """EUC-JP; bytes the standard codec rejects (NEC row 13, ①) get the cp51932 reading."""
    try:
        return data.decode("euc_jp")
    except UnicodeDecodeError:
        pass
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b < 0x80:
            out.append(b)
            i += 1
        elif b == 0x8E and i + 1 < n:  # half-width katakana
            out.append(data[i + 1])
            i += 2
        elif 0xA1 <= b <= 0xFE and i + 1 < n and 0xA1 <= data[i + 1] <= 0xFE:
            out += _jis_to_sjis(b - 0x80, data[i + 1] - 0x80, data)
            i += 2
        else:
            raise UnicodeDecodeError("euc_jp", data, i, i + 1, "not EUC-JP")
    return out.decode("cp932")
