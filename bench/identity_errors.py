"""Where the learned scorer goes wrong on the generated Japanese set, by cause (on demand).

    .venv/bin/python -m bench.identity_errors --n 20000 --seed 11 [--show 20]

Runs the in-memory scorer (``bench.bench_linker``: same frame, model, blocking and guard as
the resolver) and sorts every false pair of records into the cause it comes from, so a fix
is aimed at a class of errors and checked on another seed, never at one seed's pairs:

- false merges: a kanji-only row of a name with several readings joining the other reader,
  the two same-kanji hard negatives joined, a chain through a row that fits two namesakes,
  a direct link between two people of one name at one company;
- missed pairs: never compared (no blocking key in common), refused by the guard (waiting
  in review), a second-CRM row with a typo or variant and nothing else in common, a second
  mailbox below the threshold.

``--show N`` prints N sampled pairs of each kind with their comparison levels and bits.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from itertools import combinations
from typing import Any

import numpy as np

from bench.bench_linker import features, quality
from bench.identity_ja import japanese_people
from warehouse import records as r
from warehouse.identity.linkage import comparisons as cmp
from warehouse.identity.linkage import frame, guard, linker
from warehouse.identity.matching import MatchSettings


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


def run(n: int, seed: int, show: int = 0) -> dict[str, Any]:
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
        **quality(labels, truth),
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
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--show", type=int, default=0, help="Sampled pairs of each kind to print.")
    args = ap.parse_args()
    print(json.dumps(run(args.n, args.seed, args.show), ensure_ascii=False), flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
