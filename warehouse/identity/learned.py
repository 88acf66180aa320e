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
from sqlalchemy import Connection, select

from warehouse import schema as t
from warehouse.identity import schema as ids
from warehouse.identity.keys.matching import Decision, MatchSettings, PersonFeatures
from warehouse.identity.linkage import blocking_rules as br
from warehouse.identity.linkage import frame as fm
from warehouse.identity.linkage import guard, linker
from warehouse.identity.linkage.comparisons import PERSON
from warehouse.identity.linkage.em import Model
from warehouse.identity.linkage.features import Columns
from warehouse.write.upsert import upsert

S = t.table(ids.IdentityState)
MODEL_ENTITY = "person:model"


def save_model(conn: Connection, model: Model, tf: dict[str, dict[str, float]]) -> None:
    upsert(
        conn,
        S,
        [{"entity": MODEL_ENTITY, "stats": {"model": model.as_dict(), "tf": tf}}],
        ["entity"],
    )


def load_model(conn: Connection) -> tuple[Model, dict[str, dict[str, float]]] | None:
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
    p = sc.probability
    keep = np.ones(sc.i.shape[0], bool)
    if only is not None:
        rows = np.asarray(sorted(only), dtype=np.int64)
        keep = fm.isin(sc.i, rows) | fm.isin(sc.j, rows)
    merge = keep & (p >= settings.merge_threshold)
    checks = guard.strong_checks(linker.disagreement_weights(model))
    _, refused = guard.cluster(fr, sc.i, sc.j, sc.bits, merge, checks)
    out: list[Decision] = []
    labels = linker.evidence_labels(model)
    # Columns as Python lists once: indexing numpy arrays per pair costs more than the pair.
    sel = np.nonzero(keep & (p >= settings.review_threshold))[0]
    a_ids, b_ids = fr.ids[sc.i[sel]].tolist(), fr.ids[sc.j[sel]].tolist()
    probs, bits, levels = p[sel].tolist(), sc.bits[sel].tolist(), sc.levels[sel].tolist()
    merges = merge[sel].tolist()
    for k, e in enumerate(sel.tolist()):
        a, b = a_ids[k], b_ids[k]
        fields: dict[str, Any] = linker.evidence(labels, levels[k])
        fields["bits"] = round(bits[k], 1)
        why = refused.get(e)
        if why is not None:
            fields["refused"] = why
        decision = "merge" if merges[k] and why is None else "review"
        lo, hi = (a, b) if a < b else (b, a)
        out.append(Decision(lo, hi, "score", round(probs[k], 4), fields, decision))
    return out


def score_columns(
    settings: MatchSettings, cols: Columns
) -> tuple[list[Decision], dict[str, int], Callable[[Connection], None]]:
    """Learn from every live person (features in record-key order) and decide every
    blocked pair; the third result stores the model learned (the caller writes it, when
    the database is its to write)."""
    fr = fm.build_columns(cols)
    ls = settings.link
    model = linker.train(fr, ls)
    tf = linker.tf_tables(fr)
    sc = linker.score(fr, model, ls, tf=tf)
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
    ids = cols.ids.tolist()
    order = sorted(range(len(keys)), key=lambda k: (keys[k] or missing, ids[k]))
    return cols.take(order)


def score_some(
    conn: Connection,
    settings: MatchSettings,
    feats: Sequence[PersonFeatures],
    changed: set[int],
) -> tuple[list[Decision], int]:
    """Incremental: the rows ``changed`` against their neighbourhood ``feats``, with the
    weights the last full run learned (learned now if there are none yet)."""
    if not changed or len(feats) < 2:
        return [], 0
    fr = fm.build(feats)
    got = load_model(conn)
    if got is None:
        model = linker.train(fr, settings.link)
        tf = linker.tf_tables(fr)
    else:
        model, tf = got
    rows = {k for k, rid in enumerate(fr.ids.tolist()) if rid in changed}
    # Only pairs touching a changed row are scored: the rest were decided by earlier runs.
    i, j, _ = br.union(fr, settings.link.rules, settings.link.max_block)
    mine = np.asarray(sorted(rows), dtype=np.int64)
    touch = fm.isin(i, mine) | fm.isin(j, mine)
    sc = linker.score(fr, model, settings.link, i[touch], j[touch], tf=tf)
    return _decisions(fr, model, sc, settings, only=rows), int(sc.i.shape[0])
