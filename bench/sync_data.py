"""Data for the spreadsheet sync benchmark: an N-row cp932 contact export, as Excel writes it.

Its own module because ``bench_sync`` only times phases over a file: this one owns what the
file holds (the Japanese column headers and their ASCII names for the plain-SQL and dlt peers,
Faker-drawn companies, people and deals), how it is written and edited for the 1 % change
run, and how it is read back.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HEADER = [
    "顧客ID",
    "会社名",
    "氏名",
    "フリガナ",
    "メールアドレス",
    "電話番号",
    "部署",
    "役職",
    "住所",
    "Webサイト",
    "担当営業",
    "案件名",
    "フェーズ",
    "金額",
    "受注予定日",
    "登録日",
    "会員ランク",
]
ASCII = [
    "customer_id",
    "company",
    "name",
    "kana",
    "email",
    "phone",
    "department",
    "title",
    "address",
    "website",
    "owner",
    "deal",
    "stage",
    "amount",
    "close_date",
    "registered",
    "rank",
]
ENCODING = "cp932"


def _pools(seed: int) -> dict[str, Any]:
    from faker import Faker

    ja, en = Faker("ja_JP"), Faker("en_US")
    Faker.seed(seed)

    def ok(s: str) -> bool:
        try:
            s.encode(ENCODING)
            return True
        except UnicodeEncodeError:
            return False

    fam = [p for p in (ja.last_name_pair() for _ in range(1500)) if ok(p[0] + p[1])]
    giv = [p for p in (ja.first_name_pair() for _ in range(1500)) if ok(p[0] + p[1])]
    en_names = [(en.last_name(), en.first_name()) for _ in range(800)]
    addresses = [a for a in (ja.address() for _ in range(3000)) if ok(a)]
    companies: list[tuple[str, str]] = []
    rnd = random.Random(seed)
    for i in range(20000):
        if rnd.random() < 0.85:
            base = ja.last_name() + rnd.choice(["商事", "建設", "保険", "電機", "物産", "製作所"])
            form = rnd.choice(["株式会社{}", "{}株式会社", "(株){}", "有限会社{}", "合同会社{}"])
            name = form.format(base)
            dom = f"{rnd.choice(fam)[2].lower()}-{i}.co.jp"
        else:
            name = en.company() + rnd.choice([" Inc.", " Co., Ltd.", " LLC", ""])
            dom = f"{name.split()[0].strip(',').lower()}-{i}.com"
        if ok(name):
            companies.append((name, dom))
    return {
        "fam": fam,
        "giv": giv,
        "en": en_names,
        "addr": addresses,
        "co": companies,
        "staff": [f"sales{i}@kizuna-demo.co.jp" for i in range(60)],
    }


DEPTS = ["営業部", "総務部", "情報システム部", "経営企画室", "購買部", "Sales", "IT"]
TITLES = ["部長", "課長", "係長", "主任", "担当", "代表取締役", "Manager", "Director", ""]
STAGES = ["リード", "ヒアリング", "提案", "見積提出", "交渉", "受注", "失注"]
RANKS = ["ゴールド", "シルバー", "ブロンズ", ""]


def _row(i: int, p: dict[str, Any], rnd: random.Random) -> list[str]:
    co, dom = p["co"][rnd.randrange(len(p["co"]))]
    if dom.endswith(".com") and rnd.random() < 0.9:
        last, first = p["en"][rnd.randrange(len(p["en"]))]
        name, kana, local = f"{first} {last}", "", f"{first}.{last}".lower()
    else:
        f = p["fam"][rnd.randrange(len(p["fam"]))]
        g = p["giv"][rnd.randrange(len(p["giv"]))]
        name = f[0] + rnd.choice(["　", " "]) + g[0]
        kana = f"{f[1]} {g[1]}"
        local = f"{g[2]}.{f[2]}".lower()
    mobile = rnd.random() < 0.4
    phone = (
        f"090-{rnd.randrange(10000):04d}-{rnd.randrange(10000):04d}"
        if mobile
        else f"03-{rnd.randrange(1000, 10000)}-{rnd.randrange(10000):04d}"
    )
    deal = rnd.random() < 0.3
    amount = rnd.randrange(10, 5000) * 10000
    amount_s = rnd.choice([f"¥{amount:,}", f"{amount:,}円", f"{amount // 10000}万円", str(amount)])
    y, m, d = 2026, rnd.randrange(1, 13), rnd.randrange(1, 29)
    close = rnd.choice([f"{y}/{m:02d}/{d:02d}", f"{y}-{m:02d}-{d:02d}", f"令和8年{m}月{d}日"])
    return [
        f"C{i:07d}",
        co,
        name,
        kana,
        f"{local}.{i}@{dom}",
        phone,
        rnd.choice(DEPTS),
        rnd.choice(TITLES),
        p["addr"][rnd.randrange(len(p["addr"]))],
        f"https://www.{dom}/",
        rnd.choice(p["staff"]),
        f"{co} {rnd.choice(['基幹刷新', '保守更新', 'SFA導入', '増設'])}" if deal else "",
        rnd.choice(STAGES) if deal else "",
        amount_s.replace("¥", "￥") if deal else "",
        close if deal else "",
        f"2025/{m:02d}/{d:02d}",
        rnd.choice(RANKS),
    ]


def generate(path: Path, rows: int, seed: int = 7) -> None:
    pools = _pools(seed)
    rnd = random.Random(seed)
    with path.open("w", encoding=ENCODING, newline="") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        batch = []
        for i in range(rows):
            batch.append(_row(i, pools, rnd))
            if len(batch) == 10000:
                w.writerows(batch)
                batch = []
        w.writerows(batch)


def change_file(src: Path, dst: Path, every: int = 100) -> int:
    """Copy the export editing one row in ``every`` (a new title): a 1 % change by default."""
    n = 0
    with (
        src.open(encoding=ENCODING, newline="") as fi,
        dst.open("w", encoding=ENCODING, newline="") as fo,
    ):
        r, w = csv.reader(fi), csv.writer(fo)
        w.writerow(next(r))
        title = HEADER.index("役職")
        for i, row in enumerate(r):
            if i % every == 0:
                row[title] = "執行役員" if row[title] != "執行役員" else "部長"
                n += 1
            w.writerow(row)
    return n


def read_rows(path: Path) -> Iterator[list[str]]:
    with path.open(encoding=ENCODING, newline="") as f:
        r = csv.reader(f)
        next(r)
        yield from r
