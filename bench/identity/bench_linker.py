"""The learned scorer on its own: quality and speed without the database (on demand).

    .venv/bin/python -m bench.identity.bench_linker febrl              # FEBRL 1-3, weights by EM
    .venv/bin/python -m bench.identity.bench_linker japanese --n 5000  # generated, hard negatives
    .venv/bin/python -m bench.identity.bench_linker scale --n 750000   # ~1M records: time and memory

Every record is its own row (as the write path keeps them once records stay records), the
weights are learned from the data alone (no labels; FEBRL without its soc_sec_id), and a pair
counts as predicted when its two records end in one cluster. Each phase prints its seconds;
peak RSS is the process's own.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from bench.identity.identity_data import febrl
from bench.identity.identity_ja import japanese_people
from warehouse import records as r
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.linkage import features as fe
from warehouse.identity.linkage import frame, guard, linker


def rows_of(people: Iterable[r.Person]) -> list[fe.Row]:
    """Person records as the rows the resolver reads from the warehouse."""
    out: list[fe.Row] = []
    for k, p in enumerate(people):
        org = p.organization
        out.append(
            (
                k,
                p.family_name,
                p.given_name,
                p.family_name_kana,
                p.given_name_kana,
                p.full_name,
                p.birth_date,
                p.attributes,
                org.name if org else None,
                org.corporate_number if org else None,
                tuple(p.emails),
                tuple(p.phones),
            )
        )
    return out


def features(people: Iterable[r.Person], settings: MatchSettings) -> fe.Columns:
    return fe.compute(rows_of(people), settings)


def resolve(feats: fe.Columns | list[fe.Columns], settings: MatchSettings) -> dict[str, Any]:
    """Frame, learn, score, cluster; given the features in a list, they are let go once the
    frame holds what it needs (as the resolver's scoring step does)."""
    phases: dict[str, float] = {}
    cpu: dict[str, float] = {}
    clock = [time.monotonic(), time.process_time()]

    rss: dict[str, float] = {}

    def lap(name: str) -> None:
        wall, proc = time.monotonic(), time.process_time()
        phases[name] = round(wall - clock[0], 2)
        cpu[name] = round(proc - clock[1], 2)
        rss[name] = _rss_now_mib()
        clock[:] = [wall, proc]

    fr = frame.build_columns(feats.pop() if isinstance(feats, list) else feats)
    lap("frame")
    model = linker.train(fr, settings.link)
    lap("learn")
    sc = linker.score(fr, model, settings.link)
    lap("score")
    p = sc.probability
    checks = guard.strong_checks(linker.disagreement_weights(model))
    labels, refused = guard.cluster(fr, sc.i, sc.j, sc.bits, p >= settings.merge_threshold, checks)
    lap("cluster")
    review = int(((p >= settings.review_threshold) & (p < settings.merge_threshold)).sum())
    return {
        "labels": labels,
        "pairs": int(sc.i.shape[0]),
        "oversized": sc.oversized,
        "review": review + len(refused),
        "refused": len(refused),
        "phases": phases,
        "cpu": cpu,
        "rss_after_mib": rss,
        "lambda": model.lam,
    }


def quality(labels: np.ndarray, truth_of: Sequence[int]) -> dict[str, float]:
    """Pairwise precision/recall/F1 from cluster labels against true entity ids."""

    def pairs(keys: Iterable[int]) -> set[tuple[int, int]]:
        groups: dict[int, list[int]] = defaultdict(list)
        for k, g in enumerate(keys):
            groups[int(g)].append(k)
        return {x for g in groups.values() if len(g) > 1 for x in combinations(g, 2)}

    pred, true = pairs(labels.tolist()), pairs(truth_of)
    tp = len(pred & true)
    p = tp / len(pred) if pred else 0.0
    rc = tp / len(true) if true else 0.0
    f1 = 2 * p * rc / (p + rc) if p + rc else 0.0
    return {"precision": round(p, 4), "recall": round(rc, 4), "f1": round(f1, 4)}


def _rss_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _rss_now_mib() -> float:
    """This process's resident memory now (the peak is ``_rss_mib``)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _find(parent: list[int], x: int) -> int:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def run_febrl(settings: MatchSettings) -> None:
    for n in (1, 2, 3):
        people, truth = febrl(n)
        ids = {p.source_id: k for k, p in enumerate(people)}
        # True entity of each record: FEBRL's links as connected groups.
        parent = list(range(len(people)))
        for a, b in truth:
            parent[_find(parent, ids[a])] = _find(parent, ids[b])
        t = time.monotonic()
        feats = features(people, settings)
        got = resolve(feats, settings)
        row = {
            "dataset": f"febrl{n}",
            "records": len(people),
            **quality(got["labels"], [_find(parent, k) for k in range(len(people))]),
            "pairs_compared": got["pairs"],
            "review": got["review"],
            "seconds": round(time.monotonic() - t, 2),
        }
        print(json.dumps(row), flush=True)


# Rows per range: the warehouse reads ranges too, never the whole store; one ``Memo`` keeps
# the distinct values computed from range to range.
CHUNK = 100_000


def generated(n: int, seed: int, cache: Path | None) -> tuple[Iterator[list[fe.Row]], list[int]]:
    """The generated set as ranges of warehouse rows, and each row's true person; kept in
    ``cache`` (pickled truth, then one pickle per range) so repeated runs time resolution,
    not Faker, and hold one range of input at a time, as the resolver does."""
    if cache is None or not cache.exists():
        truth: list[int] = []

        def stream() -> Iterable[r.Person]:
            for _, p, b in japanese_people(n, seed=seed):
                truth.append(b)
                yield p

        rows = rows_of(stream())
        if cache is None:
            return iter([rows[a : a + CHUNK] for a in range(0, len(rows), CHUNK)]), truth
        with cache.open("wb") as out:
            pickle.dump(truth, out, protocol=pickle.HIGHEST_PROTOCOL)
            for a in range(0, len(rows), CHUNK):
                pickle.dump(rows[a : a + CHUNK], out, protocol=pickle.HIGHEST_PROTOCOL)
        del rows
    fh = cache.open("rb")
    first = pickle.load(fh)
    if isinstance(first, tuple):  # an older cache: (rows, truth) in one pickle
        fh.close()
        old_rows, old_truth = first
        return iter([old_rows[a : a + CHUNK] for a in range(0, len(old_rows), CHUNK)]), old_truth

    def ranges() -> Iterator[list[fe.Row]]:
        with fh:
            while True:
                try:
                    yield pickle.load(fh)
                except EOFError:
                    return

    return ranges(), first


def run_japanese(n: int, seed: int, settings: MatchSettings, cache: Path | None) -> dict[str, Any]:
    t = time.monotonic()
    ranges, truth = generated(n, seed, cache)
    gen_s = round(time.monotonic() - t, 2)
    cpu0 = time.process_time()
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    read_s = read_cpu = 0.0
    parts = []
    memo = fe.Memo(settings)
    while True:
        t_read, c_read = time.monotonic(), time.process_time()
        rows = next(ranges, None)
        read_s += time.monotonic() - t_read
        read_cpu += time.process_time() - c_read
        if rows is None:
            break
        parts.append(fe.compute(rows, settings, memo))
        del rows
    memo.close()
    feats = [fe.Columns.concat(parts)]
    del parts, memo
    frame.release()
    features_rss = _rss_now_mib()
    feat_s = round(time.monotonic() - t - read_s, 2)
    got = resolve(feats, settings)
    wall = round(feat_s + sum(got["phases"].values()), 2)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - cpu0 + (kids.ru_utime + kids.ru_stime)
    cpu -= children0.ru_utime + children0.ru_stime + read_cpu
    row = {
        "dataset": f"japanese n={n} seed={seed}",
        "records": len(truth),
        **quality(got["labels"], truth),
        "pairs_compared": got["pairs"],
        "review": got["review"],
        "refused_by_guard": got["refused"],
        "generate_s": gen_s,
        "read_ranges_s": round(read_s, 2),
        "features_s": feat_s,
        **{f"{k}_s": v for k, v in got["phases"].items()},
        "cpu_s": got["cpu"],
        "rss_after_mib": {"features": features_rss, **got["rss_after_mib"]},
        "resolve_wall_s": wall,
        "resolve_cpu_s": round(cpu, 1),
        "peak_rss_mib": _rss_mib(),
        "peak_rss_worker_mib": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
        "load_avg": round(os.getloadavg()[0], 1),
    }
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", choices=["febrl", "japanese", "scale"])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--merge", type=float, default=0.9)
    ap.add_argument("--cache", type=Path, help="Keep the generated rows in this pickle.")
    args = ap.parse_args()
    settings = MatchSettings(merge_threshold=args.merge)
    if args.what == "febrl":
        run_febrl(settings)
    else:
        run_japanese(args.n, args.seed, settings, args.cache)


if __name__ == "__main__":
    main()
