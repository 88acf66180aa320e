"""The quote as a person sees it: the PDF embeds a Japanese font and states the totals, and
the HTML renders in real headless Chromium (screenshot under test-artifacts/)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pypdf import PdfReader
from typer.testing import CliRunner

from flows.cli.main import app
from flows.quotes import issue
from tests.support.quotes_seed import seed
from warehouse.db import open_warehouse

ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("quote")
    engine = open_warehouse(f"sqlite:///{folder / 'wh.db'}")
    ws = seed(engine, folder)
    doc = issue.create(ws, "オフィス移転支援", date(2026, 12, 3), engine=engine)
    engine.dispose()
    return doc


def _fonts(reader: PdfReader) -> dict[str, bool]:
    """BaseFont → embedded? for every font the pages use (descendants of Type0 included)."""
    out: dict[str, bool] = {}
    for page in reader.pages:
        fonts = page["/Resources"].get_object().get("/Font", {})
        for ref in fonts.values():
            font = ref.get_object()
            for f in [font, *(d.get_object() for d in font.get("/DescendantFonts", []))]:
                desc = f.get("/FontDescriptor")
                if desc is None:
                    continue
                d = desc.get_object()
                out[str(f["/BaseFont"])] = any(
                    k in d for k in ("/FontFile", "/FontFile2", "/FontFile3")
                )
    return out


def test_pdf_embeds_a_japanese_font_and_states_the_totals(issued: dict[str, Any]) -> None:
    reader = PdfReader(issued["files"]["pdf"])
    fonts = _fonts(reader)
    assert fonts and all(fonts.values()), fonts  # every font used is embedded
    assert any("CJK" in name for name in fonts), fonts
    text = "".join(p.extract_text() for p in reader.pages)
    compact = "".join(text.split())
    for expected in (
        "御見積書",
        "株式会社みどり商事",
        "山田花子様",
        "件名オフィス移転支援",
        "有効期限2027年1月2日",
        "¥350,112",  # 合計
        "¥318,422",  # 小計
        "消費税¥31,086",  # 10%
        "消費税¥604",  # 8% 軽減
        "T7000012050002",
        "お値引き",
        "-¥20,000",
        "月末締め翌月末払い",
    ):
        assert expected in compact, expected
    assert "\ufffd" not in text


def test_html_renders_in_headless_chromium(issued: dict[str, Any]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "quote.png"
    shot.unlink(missing_ok=True)
    html = Path(issued["files"]["html"])
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--hide-scrollbars",
            "--window-size=820,1160",
            f"--screenshot={shot}",
            html.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    img = Image.open(shot).convert("L")
    assert img.size == (820, 1160)
    dark = sum(1 for px in img.getdata() if px < 128)
    assert dark > 5_000, "the page rendered (almost) blank"


def test_cli_create_and_list(tmp_path: Path) -> None:
    engine = open_warehouse(f"sqlite:///{tmp_path / 'kizuna.db'}")
    ws = seed(engine, tmp_path)
    engine.dispose()
    import yaml

    ws.path.write_text(
        yaml.safe_dump(
            {"company": {"name": ws.company.name}, "quotes": ws.quotes}, allow_unicode=True
        ),
        encoding="utf-8",
    )
    runner = CliRunner()
    made = runner.invoke(
        app, ["quote", "create", "給茶機リース", "--date", "2026-12-03", "-w", str(ws.path)]
    )
    assert made.exit_code == 0, made.output
    assert "Q-2026-0001" in made.output and "¥3,236" in made.output
    assert (tmp_path / "quotes" / "Q-2026-0001-r1.pdf").exists()
    again = runner.invoke(app, ["quote", "reissue", "Q-2026-0001", "-w", str(ws.path)])
    assert again.exit_code == 0 and "第2版" in again.output
    listed = runner.invoke(app, ["quote", "list", "-w", str(ws.path)])
    assert listed.exit_code == 0 and listed.output.count("Q-2026-0001") == 2
    bad = runner.invoke(app, ["quote", "create", "ない案件", "-w", str(ws.path)])
    assert bad.exit_code == 1 and "no deal 'ない案件'" in bad.output
    assert "Traceback" not in bad.output


def test_quote_files_go_to_the_shared_storage_when_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """KIZUNA_STORAGE_URL (fsspec's in-memory filesystem here, S3 or a shared folder in
    operations): the issued quote's HTML and PDF are written there, not beside the workspace."""
    import uuid

    import fsspec

    bucket = f"memory://kz-{uuid.uuid4().hex[:8]}/shared"
    engine = open_warehouse(f"sqlite:///{tmp_path / 'wh.db'}")
    ws = seed(engine, tmp_path)  # the sheets are synced from the workspace folder first
    monkeypatch.setenv("KIZUNA_STORAGE_URL", bucket)
    doc = issue.create(ws, "オフィス移転支援", date(2026, 12, 3), engine=engine)
    engine.dispose()
    assert doc["files"]["pdf"].startswith("memory:/")
    fs, _ = fsspec.core.url_to_fs(bucket)
    pdf_path = doc["files"]["pdf"].removeprefix("memory:")
    assert fs.cat_file(pdf_path).startswith(b"%PDF")
    assert fs.exists(doc["files"]["html"].removeprefix("memory:"))
    assert not list(tmp_path.rglob("*.pdf"))
