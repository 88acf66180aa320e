"""The learned scorer inside the resolver: load features, learn, score, guard, decide.

A full run learns the model from every live person (u from random pairs, m by EM over the
training rules, λ from the deterministic rules, term frequencies of name readings) and keeps
it in ``identity_state`` (entity ``person:model``), so an incremental run scores the rows
that changed with the same weights instead of relearning from a neighbourhood. Every scored
pair keeps its evidence: the bits each comparison added, for (positive) and against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Connection, select

from warehouse import schema as t
from warehouse.identity import schema as ids
from warehouse.identity.keys.matching import Decision, MatchSettings
from warehouse.identity.linkage import blocking_rules as br
from warehouse.identity.linkage import frame as fm
from warehouse.identity.linkage import guard, linker
from warehouse.identity.linkage.comparisons import PERSON
from warehouse.identity.linkage.em import Model
from warehouse.identity.linkage.features import Columns
from warehouse.write.upsert import upsert

Ints = NDArray[np.int64]

S = t.table(ids.IdentityState)
MODEL_ENTITY = "person:model"


def save_model(conn: Connection, model: Model, tf: dict[str, dict[str, float]]) -> None:
    upsert(
        conn,
        S,
        [{"entity": MODEL_ENTITY, "stats": {"model": model.as_dict(), "tf": tf}}],
        ["entity"],
    )


Stored = tuple[Model, dict[str, dict[str, float]]] | None  # the weights and term frequencies


def load_model(conn: Connection) -> Stored:
    row = conn.execute(select(S.c.stats).where(S.c.entity == MODEL_ENTITY)).first()
    if row is None or not row[0]:
        return None
    data: dict[str, Any] = row[0]
    fixed = {(k, lv): bits for k, c in enumerate(PERSON) for lv, bits in c.fixed}
    return Model.from_dict(data["model"], fixed), data.get("tf", {})


def _decisions(
    fr: fm.Frame,
    model: Model,
    sc: linker.Scored,
    settings: MatchSettings,
    only: set[int] | None = None,
) -> list[Decision]:
    """Every pair above the review threshold as a decision with its evidence; a merge the
    guard refuses (it would chain people who cannot be one) is a review, its reason in the
    evidence. The guard runs here, before the decisions are spelled out: beside them in a
    forked process, the two held 0.4 GB more at a million people than one after the other."""
    p = sc.probability
    keep = np.ones(sc.i.shape[0], bool)
    if only is not None:
        rows = np.asarray(sorted(only), dtype=np.int64)
        keep = fm.isin(sc.i, rows) | fm.isin(sc.j, rows)
    merge = keep & (p >= settings.merge_threshold)
    checks = guard.strong_checks(linker.disagreement_weights(model))
    refusals = guard.cluster(fr, sc.i, sc.j, sc.bits, merge, checks)[1]
    out: list[Decision] = []
    labels = linker.evidence_labels(model)
    # Columns as Python lists once: indexing numpy arrays per pair costs more than the pair.
    sel = np.nonzero(keep & (p >= settings.review_threshold))[0]
    a_ids, b_ids = fr.ids[sc.i[sel]].tolist(), fr.ids[sc.j[sel]].tolist()
    probs, bits = p[sel].tolist(), sc.bits[sel].tolist()
    # A pair's evidence depends only on its levels: a few thousand distinct rows of levels
    # for half a million pairs, each spelled out once.
    first, kind = _kinds(sc.levels[sel])
    said = [linker.evidence(labels, row) for row in sc.levels[sel][first].tolist()]
    merges, kind_of = merge[sel].tolist(), kind.reshape(-1).tolist()
    why = [refusals.get(e) for e in sel.tolist()] if refusals else [None] * len(a_ids)
    for k in range(len(a_ids)):
        a, b = a_ids[k], b_ids[k]
        fields: dict[str, Any] = said[kind_of[k]].copy()
        fields["bits"] = round(bits[k], 1)
        lo, hi = (a, b) if a < b else (b, a)
        decision = "merge" if merges[k] else "review"
        if why[k] is not None:
            fields["refused"] = why[k]
            decision = "review"
        out.append(Decision(lo, hi, "score", round(probs[k], 4), fields, decision))
    return out


def _kinds(levels: NDArray[np.int8]) -> tuple[Ints, Ints]:
    """The first row of each distinct row of ``levels`` and each row's kind: each row packed
    into one integer (a level from -1, not compared): ``np.unique`` over rows took 0.7 s
    for half a million pairs, this 0.2."""
    lv = levels.astype(np.int64) + 1
    width = max(1, int(lv.max(initial=0)).bit_length())
    if width * lv.shape[1] > 62:
        _, first, kind = np.unique(levels, axis=0, return_index=True, return_inverse=True)
    else:
        packed = (lv << (width * np.arange(lv.shape[1], dtype=np.int64))).sum(axis=1)
        _, first, kind = np.unique(packed, return_index=True, return_inverse=True)
    return first, kind.reshape(-1)


def score_columns(
    settings: MatchSettings, cols: Columns
) -> tuple[list[Decision], dict[str, int], Callable[[Connection], None]]:
    """Learn from every live person (features in record-key order) and decide every
    blocked pair; the third result stores the model learned (the caller writes it, when
    the database is its to write).

    The weights are learned here, before the pairs are found. Learned in a forked process
    beside the pairing they cost no time on the critical path, but each process copied
    the pages of the other's shared values it touched: 0.3 GB more at a million people
    (≈ 2.0 GB against ≈ 1.7 GB), for 3 s."""
    fr = fm.build_columns(cols)
    ls = settings.link
    model, tf = linker.train(fr, ls), linker.tf_tables(fr)
    sc = linker.score(fr, model, ls, tf=tf, paired=linker.pair(fr, ls))
    found = _decisions(fr, model, sc, settings)
    stats = {"pairs": int(sc.i.shape[0]), "oversized": sc.oversized}
    return found, stats, lambda conn: save_model(conn, model, tf)


def in_key_order(dialect: str, cols: Columns, keys: Sequence[str]) -> Columns:
    """Columns in record-key order (``keys``: each row's), then id: the key is a digest of the record's
    own source, so the order (and with it the random pairs u is learned from) is the same
    however the rows were written: one sync after another, or several workers at once. A
    row without a key sorts where the database puts NULL (first on SQLite, last on
    PostgreSQL), as the order once read from the store did."""
    missing = "" if dialect == "sqlite" else "\U0010ffff"
    text = np.array([k or missing for k in keys], dtype=str)  # code point order, as str's
    return cols.take(np.lexsort((cols.ids, text)) if len(keys) else np.zeros(0, np.int64))


def score_some(
    settings: MatchSettings,
    cols: Columns,
    changed: set[int],
    stored: Stored,
) -> tuple[list[Decision], int]:
    """Incremental: the rows ``changed`` against their neighbourhood ``cols``, with the
    weights the last full run learned (``stored``: ``load_model``'s; learned now if there
    are none yet)."""
    if not changed or len(cols) < 2:
        return [], 0
    fr = fm.build_columns(cols)
    if stored is None:
        model = linker.train(fr, settings.link)
        tf = linker.tf_tables(fr)
    else:
        model, tf = stored
    rows = {k for k, rid in enumerate(fr.ids.tolist()) if rid in changed}
    # Only pairs touching a changed row are scored: the rest were decided by earlier runs.
    i, j, _ = br.union(fr, settings.link.rules, settings.link.max_block)
    mine = np.asarray(sorted(rows), dtype=np.int64)
    touch = fm.isin(i, mine) | fm.isin(j, mine)
    sc = linker.score(fr, model, settings.link, i[touch], j[touch], tf=tf)
    return _decisions(fr, model, sc, settings, only=rows), int(sc.i.shape[0])
