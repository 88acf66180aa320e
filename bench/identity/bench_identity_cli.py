"""Identity through the CLI path: two keyless exports → ``kizuna sync`` → ``kizuna export
crosswalk`` → precision/recall/F1, then the same ids after a rebuild from shuffled files.

    .venv/bin/python -m bench.identity.bench_identity_cli --n 2000
    .venv/bin/python -m bench.identity.bench_identity_cli --n 20000 --seed 11 --errors 5  # by cause

The generated Japanese set (``bench.identity.identity_ja``: every phenomenon of the identity issues,
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
from collections import Counter, defaultdict
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import yaml

from bench.identity.bench_identity import quality
from bench.identity.bench_linker import features
from bench.identity.bench_linker import quality as label_quality
from bench.identity.identity_ja import japanese_people
from warehouse import records as r
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.linkage import comparisons as cmp
from warehouse.identity.linkage import frame, guard, linker

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


def _fp_cause(direct: bool, a: str, b: str) -> str:
    if "neg" in (a, b) and "mail" in (a, b):
        return "kanji-only row of a name with several readings joins the other reader"
    if a == b == "neg":
        return "same-kanji hard negatives joined"
    if not direct:
        return "chain through a row that fits two namesakes"
    return "same name and company, two people, linked directly"


def _fn_cause(why: str, a: str, b: str) -> str:
    if why != "lowscore":
        return {"unblocked": "never compared", "refused": "refused by the guard (review)"}[why]
    if "crm2" in (a, b):
        return "second-CRM row (typo, variant, cross-script) with nothing else in common"
    if "second" in (a, b):
        return "second mailbox, name + company only"
    return "other low score"


def errors(n: int, seed: int, show: int = 0) -> dict[str, Any]:
    """Every false pair of the in-memory scorer (``bench.identity.bench_linker``: the resolver's frame,
    model, blocking and guard) sorted by cause, so a fix aims at a class of errors and is
    checked on another seed, never at one seed's pairs; ``show`` sampled pairs of each kind
    are printed with their comparison levels and bits."""
    settings = MatchSettings()
    truth: list[int] = []
    kinds: list[str] = []
    people: list[r.Person] = []

    def stream() -> Iterator[r.Person]:
        for kind, p, base in japanese_people(n, seed=seed):
            truth.append(base)
            kinds.append("neg" if base >= n and kind == "crm" else kind)
            people.append(p)
            yield p

    fr = frame.build_columns(features(stream(), settings))
    model = linker.train(fr, settings.link)
    sc = linker.score(fr, model, settings.link)
    p = sc.probability
    checks = guard.strong_checks(linker.disagreement_weights(model))
    labels, refused = guard.cluster(fr, sc.i, sc.j, sc.bits, p >= settings.merge_threshold, checks)
    at = {(int(a), int(b)): k for k, (a, b) in enumerate(zip(sc.i, sc.j, strict=True))}
    groups: dict[int, list[int]] = defaultdict(list)
    true_groups: dict[int, list[int]] = defaultdict(list)
    for k, g in enumerate(labels.tolist()):
        groups[g].append(k)
    for k, g in enumerate(truth):
        true_groups[g].append(k)
    fp = [(a, b) for g in groups.values() for a, b in combinations(g, 2) if truth[a] != truth[b]]
    fn = [
        (a, b)
        for g in true_groups.values()
        for a, b in combinations(g, 2)
        if labels[a] != labels[b]
    ]

    def fp_cause(a: int, b: int) -> str:
        k = at.get((a, b))
        direct = k is not None and bool(p[k] >= settings.merge_threshold) and k not in refused
        return _fp_cause(direct, *sorted((kinds[a], kinds[b])))

    def fn_cause(a: int, b: int) -> str:
        k = at.get((a, b))
        why = "unblocked" if k is None else "refused" if k in refused else "lowscore"
        return _fn_cause(why, *sorted((kinds[a], kinds[b])))

    out: dict[str, Any] = {
        "dataset": f"japanese n={n} seed={seed}",
        "records": len(truth),
        **label_quality(labels, truth),
        "false_merges": dict(Counter(fp_cause(a, b) for a, b in fp).most_common()),
        "missed": dict(Counter(fn_cause(a, b) for a, b in fn).most_common()),
        "refused": dict(Counter(w.split(":")[0] for w in refused.values()).most_common()),
    }
    rnd = random.Random(1)
    for title, pairs, cause in (("FALSE MERGE", fp, fp_cause), ("MISSED", fn, fn_cause)):
        for a, b in rnd.sample(pairs, min(show, len(pairs))):
            e = at.get((a, b))
            lv = (
                "not compared"
                if e is None
                else f"bits={sc.bits[e]:.1f} "
                + " ".join(
                    f"{c.name}={c.levels[int(x)]}"
                    for c, x in zip(cmp.PERSON, sc.levels[e], strict=True)
                    if x >= 0
                )
            )
            print(f"{title} [{cause(a, b)}] {lv}")
            for x in (a, b):
                q = people[x]
                org = q.organization.name if q.organization else ""
                name = "/".join(
                    v or ""
                    for v in (
                        q.family_name,
                        q.given_name,
                        q.family_name_kana,
                        q.given_name_kana,
                        q.full_name,
                    )
                )
                print(f"    {kinds[x]}#{truth[x]} {name} {q.emails} {q.phones} {org}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--root", type=Path, default=Path("/tmp/kizuna-bench-identity-cli"))
    ap.add_argument("--one-contact", action="store_true", help="One mail and one phone column.")
    ap.add_argument(
        "--errors",
        type=int,
        metavar="SHOW",
        help="Instead: the in-memory scorer's false pairs by cause, SHOW samples of each kind.",
    )
    args = ap.parse_args()
    if args.errors is not None:
        print(json.dumps(errors(args.n, args.seed, args.errors), ensure_ascii=False), flush=True)
        return
    print(json.dumps(run(args.n, args.seed, args.root, args.one_contact)), flush=True)


if __name__ == "__main__":
    main()
