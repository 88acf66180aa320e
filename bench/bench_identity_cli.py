"""Identity through the CLI path: two keyless exports → ``kizuna sync`` → ``kizuna export
crosswalk`` → precision/recall/F1, then the same ids after a rebuild from shuffled files.

    .venv/bin/python -m bench.bench_identity_cli --n 2000

The generated Japanese set (``bench.identity_ja``: every phenomenon of the identity issues,
hard negatives) is written the way two departments export it: the CRM rows as an Excel
"CSV (コンマ区切り)" in cp932 (𠮷 becomes ``?``), every other source's rows as "CSV UTF-8"
with a BOM; no ID column; two mail columns (メールアドレス, Eメール) and two phone columns
(電話番号, 携帯電話), ``--one-contact`` keeps only the first of each as one-column exports do. The commands run as a user runs them, in a child process each; a pair
of rows is predicted the same when the crosswalk gives them one person id.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import yaml

from bench.bench_identity import quality
from bench.identity_ja import japanese_people
from warehouse import records as r

HEADER = [
    "会社名",
    "姓",
    "名",
    "セイ",
    "メイ",
    "氏名",
    "メールアドレス",
    "Eメール",
    "電話番号",
    "携帯電話",
    "生年月日",
    "法人番号",
]
FILES = (("sales", "cp932"), ("support", "utf-8-sig"))


def _row(p: r.Person, one_contact: bool = False) -> list[str]:
    org = p.organization
    more = not one_contact
    split = bool(p.family_name or p.given_name)
    return [
        org.name if org and org.name else "",
        p.family_name or "",
        p.given_name or "",
        p.family_name_kana or "",
        p.given_name_kana or "",
        "" if split else (p.full_name or ""),
        p.emails[0] if p.emails else "",
        p.emails[1] if more and len(p.emails) > 1 else "",
        p.phones[0] if p.phones else "",
        p.phones[1] if more and len(p.phones) > 1 else "",
        p.birth_date.isoformat() if p.birth_date else "",
        org.corporate_number if org and org.corporate_number else "",
    ]


def exports(n: int, seed: int, one_contact: bool) -> dict[str, list[tuple[list[str], int]]]:
    """Rows per file, each with its true person."""
    out: dict[str, list[tuple[list[str], int]]] = {"sales": [], "support": []}
    for source, p, base in japanese_people(n, seed=seed):
        out["sales" if source == "crm" else "support"].append((_row(p, one_contact), base))
    return out


def write(root: Path, files: dict[str, list[tuple[list[str], int]]]) -> None:
    for name, encoding in FILES:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\r\n").writerows([HEADER, *(x for x, _ in files[name])])
        (root / f"{name}.csv").write_bytes(buf.getvalue().encode(encoding, errors="replace"))
    ws: dict[str, Any] = {
        "company": {"name": "株式会社ベンチ", "domains": ["kizuna-bench.co.jp"]},
        "warehouse": {"url": f"sqlite:///{root / 'wh.db'}"},
        "sources": {name: {"type": "spreadsheet", "path": f"{name}.csv"} for name, _ in FILES},
    }
    (root / "kizuna.yaml").write_text(yaml.safe_dump(ws, allow_unicode=True), encoding="utf-8")


def kizuna(root: Path, *args: str) -> tuple[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    t0 = time.monotonic()
    got = subprocess.run(
        [str(Path(sys.executable).with_name("kizuna")), *args, "-w", str(root / "kizuna.yaml")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if got.returncode != 0:
        raise SystemExit(f"kizuna {' '.join(args)} failed: {got.stderr[-2000:] or got.stdout}")
    return got.stdout, round(time.monotonic() - t0, 2)


def crosswalk(root: Path) -> tuple[dict[tuple[str, int], str], float]:
    """(file, data row from 0) → person id."""
    out, secs = kizuna(root, "export", "crosswalk", "-f", "jsonl")
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    first = {f: min(x["row"] for x in lines if x["file"] == f) for f in {x["file"] for x in lines}}
    # The header is the file's first row: data rows are numbered from the smallest seen.
    return {
        (x["file"].removesuffix(".csv"), x["row"] - first[x["file"]]): x["person_id"] for x in lines
    }, secs


def run(n: int, seed: int, root: Path, one_contact: bool = False) -> dict[str, Any]:
    files = exports(n, seed, one_contact)
    rows = sum(len(v) for v in files.values())
    found = []
    timings = []
    for attempt in (0, 1):
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        order = {k: list(v) for k, v in files.items()}
        if attempt:  # rebuilt from the same rows in another order
            for v in order.values():
                random.Random(9).shuffle(v)
        write(root, order)
        _, sync_s = kizuna(root, "sync")
        ids, export_s = crosswalk(root)
        # Back to the generated rows: (file, row) → (row's identity in the generated set).
        by_row = {(f, k): (f, v[k][0]) for f, v in order.items() for k in range(len(v))}
        found.append({tuple(map(str, by_row[key][1])): pid for key, pid in ids.items()})
        timings.append({"sync_s": sync_s, "export_s": export_s})
        if attempt == 0:
            groups: dict[str, list[tuple[str, int]]] = defaultdict(list)
            truth_groups: dict[int, list[tuple[str, int]]] = defaultdict(list)
            for (f, k), pid in ids.items():
                groups[pid].append((f, k))
            for f, v in order.items():
                for k, (_, base) in enumerate(v):
                    truth_groups[base].append((f, k))
            pred = {x for g in groups.values() for x in combinations(sorted(g), 2)}
            truth = {x for g in truth_groups.values() for x in combinations(sorted(g), 2)}
            q = quality(pred, truth)  # type: ignore[arg-type]
            landed = len(ids)
    same = found[0] == found[1]
    return {
        "people": n,
        "contacts_per_row": 1 if one_contact else 2,
        "rows": rows,
        "crosswalk_lines": landed,
        **q,
        "same_ids_after_shuffled_rebuild": same,
        "runs": timings,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--root", type=Path, default=Path("/tmp/kizuna-bench-identity-cli"))
    ap.add_argument("--one-contact", action="store_true", help="One mail and one phone column.")
    args = ap.parse_args()
    print(json.dumps(run(args.n, args.seed, args.root, args.one_contact)), flush=True)


if __name__ == "__main__":
    main()
