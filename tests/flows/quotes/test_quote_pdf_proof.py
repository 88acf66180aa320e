"""The issued PDF as poppler sees it: pdffonts (the CJK font embedded), pdftotext (the
Japanese and the totals, equal to an independent computation) and pdftoppm (a PNG kept under
test-artifacts/), plus a glyph walk that fails on any .notdef (tofu) the text layer would hide.

poppler-utils is installed by ``.ci/run``; without it these tests skip locally and fail when
``KIZUNA_REQUIRE_SERVERS=1`` (CI), like the real-server tests.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pypdf import PdfReader
from pypdf.generic import ContentStream
from sqlalchemy import update

from flows.quotes import issue, render
from tests.support.quotes_seed import seed, sync_sheet, write_csv
from tests.support.servers import REQUIRE
from warehouse.db import open_warehouse
from warehouse.quotes import schema as q
from warehouse.quotes.tax import Line, compute, yen

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


def poppler(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        msg = f"{tool} not installed (apt-get install -y --no-install-recommends poppler-utils)"
        if REQUIRE:
            pytest.fail(msg + " and KIZUNA_REQUIRE_SERVERS=1")
        pytest.skip(msg)
    return path


def run(tool: str, *args: str) -> str:
    done = subprocess.run(
        [poppler(tool), *args], check=True, capture_output=True, timeout=60, text=True
    )
    return done.stdout


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("proof")
    engine = open_warehouse(f"sqlite:///{folder / 'wh.db'}")
    ws = seed(engine, folder)
    doc = issue.create(ws, "オフィス移転支援", date(2026, 12, 3), engine=engine)
    engine.dispose()
    return doc


def _cids(data: bytes) -> dict[int, int]:
    """A font's encoding CMap (code → CID) from its ``begincidchar``/``begincidrange`` blocks."""
    text = data.decode("latin-1")
    out: dict[int, int] = {}
    for block in re.findall(r"begincidchar(.*?)endcidchar", text, re.S):
        for code, cid in re.findall(r"<([0-9a-fA-F]+)>\s+(\d+)", block):
            out[int(code, 16)] = int(cid)
    for block in re.findall(r"begincidrange(.*?)endcidrange", text, re.S):
        for lo, hi, cid in re.findall(r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s+(\d+)", block):
            for i, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                out[code] = int(cid) + i
    return out


def notdef_glyphs(pdf: Path) -> int:
    """How many shown glyphs are CID 0 (.notdef, drawn as tofu) in the PDF's Type0 fonts.

    pdftotext cannot see tofu (the ToUnicode map still names the character), so the content
    streams are walked: each shown 2-byte code goes through its font's encoding to a CID, and
    with the Identity CIDToGIDMap WeasyPrint writes, CID 0 is glyph 0.
    """
    reader = PdfReader(pdf)
    bad = 0
    for page in reader.pages:
        fonts = page["/Resources"].get_object().get("/Font", {})
        encodings: dict[str, dict[int, int] | None] = {}
        for name, ref in fonts.items():
            font = ref.get_object()
            enc = font.get("/Encoding")
            if font.get("/Subtype") != "/Type0":
                continue
            enc_obj = enc.get_object() if enc is not None else None
            encodings[str(name)] = (
                None if isinstance(enc_obj, str) else _cids(enc_obj.get_data())  # Identity-H
            )
        current: str | None = None
        for operands, op in ContentStream(page.get_contents(), reader).operations:
            if op == b"Tf":
                current = str(operands[0])
                continue
            if op not in (b"Tj", b"TJ", b"'", b'"') or current not in encodings:
                continue
            strings = operands[0] if op == b"TJ" else operands[-1:]
            for s in strings:
                if isinstance(s, int | float) or not hasattr(s, "__len__"):
                    continue
                raw = s.original_bytes if hasattr(s, "original_bytes") else bytes(s, "latin-1")
                table = encodings[current]
                for i in range(0, len(raw) - 1, 2):
                    code = raw[i] << 8 | raw[i + 1]
                    cid = code if table is None else table.get(code, -1)
                    bad += cid == 0
    return bad


def test_pdffonts_shows_the_cjk_font_embedded(issued: dict[str, Any]) -> None:
    rows = run("pdffonts", issued["files"]["pdf"]).splitlines()[2:]
    assert rows, "pdffonts listed no font"
    fonts = {r.split()[0]: r for r in rows}
    assert any("CJK" in name or "JP" in name for name in fonts), fonts
    for name, row in fonts.items():
        # columns: name type… encoding emb sub uni object ID — emb is the 5th from the end
        assert row.split()[-5] == "yes", f"{name} is not embedded: {row}"


def test_pdftotext_has_the_japanese_and_the_computed_totals(issued: dict[str, Any]) -> None:
    text = run("pdftotext", "-layout", "-enc", "UTF-8", issued["files"]["pdf"], "-")
    compact = "".join(text.split())
    for expected in (
        "御見積書",
        "株式会社みどり商事",
        "総務部山田花子様",
        "下記の通りお見積り申し上げます。",
        "件名オフィス移転支援",
        "有効期限2027年1月2日",
        "移転作業一式",
        "配線工事",
        "お茶(業務用)※",
        "※は軽減税率(8%)対象です。",
        "登録番号T7000012050002",
        "月末締め翌月末払い",
        "納期はご発注後2週間です。",
    ):
        assert expected in compact.replace("（", "(").replace("）", ")"), expected
    # Totals computed here from the seed's sheet values, independently of the issued document.
    want = compute(
        [
            Line("移転作業一式", Decimal(1), Decimal(300000), 10),
            Line("配線工事", Decimal("2.5"), Decimal(12345), 10),
            Line("お茶", Decimal(7), Decimal(1080), 8),
            Line("お値引き", Decimal(1), Decimal(-20000), 10),
        ]
    )
    total_line = next(ln for ln in text.splitlines() if re.match(r"\s*合計\s", ln))
    assert yen(want.total) in total_line, total_line
    assert f"小計{yen(want.subtotal)}" in compact
    assert f"消費税{yen(want.tax)}" in compact
    for rt in want.by_rate:
        assert f"{rt.rate}%対象" in compact and f"{yen(rt.base)}消費税{yen(rt.tax)}" in compact
    for p in want.lines:
        assert yen(p.amount) in compact, p
    assert want.total == Decimal(issued["total"]) == Decimal(350112)
    assert "\ufffd" not in text


def test_pdftoppm_renders_the_page(issued: dict[str, Any]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    prefix = ARTIFACTS / "quote-pdf"
    run("pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", "-singlefile",
        issued["files"]["pdf"], str(prefix))  # fmt: skip
    img = Image.open(f"{prefix}.png").convert("L")
    w, h = img.size
    assert abs(h / w - 297 / 210) < 0.02, img.size  # one A4 page
    dark = sum(1 for px in img.getdata() if px < 128)
    assert dark > 3_000, "the PDF page rendered (almost) blank"


def test_no_glyph_is_missing(issued: dict[str, Any], tmp_path: Path) -> None:
    assert notdef_glyphs(Path(issued["files"]["pdf"])) == 0
    # The check can fail: a private-use character no font has is drawn as .notdef.
    page = render.html({**issued, "subject": "移転\ue000支援\U000f0000"})
    tofu = tmp_path / "tofu.pdf"
    tofu.write_bytes(render.pdf(page))
    assert notdef_glyphs(tofu) >= 2
    # …and pdftotext alone would not have noticed.
    assert "\ue000" in run("pdftotext", "-enc", "UTF-8", str(tofu), "-")


def test_a_tax_included_quote_reads_back_with_the_tax_inside(tmp_path: Path) -> None:
    """A 税込 price list: the PDF states 税込 amounts per rate and the tax they contain, equal
    to the back-computation done here (once per rate), and 小計 (税抜) + 消費税 = 合計."""
    engine = open_warehouse(f"sqlite:///{tmp_path / 'wh.db'}")
    ws = seed(engine, tmp_path)
    write_csv(tmp_path / "incl.csv", [
        ["商品コード", "商品名", "税込単価", "税率", "価格表"],
        ["SV-01", "移転作業一式", "330,000", "10%", "standard"],
        ["SV-02", "配線工事", "13,579", "10%", "standard"],
        ["FD-01", "お茶(業務用)", "1,080", "8%", "standard"],
    ])  # fmt: skip
    sync_sheet(engine, ws, "incl", "incl.csv", key="商品コード")
    write_csv(tmp_path / "lines2.csv", [
        ["明細ID", "案件ID", "商品コード", "数量"], ["M1", "D002", "SV-02", "3"],
        ["M2", "D002", "FD-01", "5"],
    ])  # fmt: skip
    sync_sheet(engine, ws, "lines2", "lines2.csv", key="明細ID")
    with engine.begin() as conn:  # the seed's own D002 line has a 税抜 price of its own
        conn.execute(update(q.DealLineItem).where(q.DealLineItem.unit_price.is_not(None))
                     .values(deleted_at=q.DealLineItem.updated_at))  # fmt: skip
    doc = issue.create(ws, "給茶機リース", date(2026, 12, 3), engine=engine)
    engine.dispose()
    assert doc["tax_included"] is True
    text = "".join(run("pdftotext", "-layout", "-enc", "UTF-8", doc["files"]["pdf"], "-").split())
    g10, g8 = 3 * 13579, 5 * 1080
    t10, t8 = g10 * 10 // 110, g8 * 8 // 108  # floor, once per rate
    assert f"10%対象（税込）{yen(g10)}内消費税{yen(t10)}" in text
    assert f"8%対象（税込）（軽減税率※）{yen(g8)}内消費税{yen(t8)}" in text
    assert f"小計（税抜）{yen(g10 + g8 - t10 - t8)}" in text
    assert f"合計{yen(g10 + g8)}" in text and "単価（税込）" in text
    assert notdef_glyphs(Path(doc["files"]["pdf"])) == 0
