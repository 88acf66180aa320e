"""The review queue (admins only): evidence for and against, accept, reject, never-link; split."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tests.flows.web.conftest import NOW, World, csrf_of, sign_in
from warehouse import schema as t
from warehouse.identity import admin
from warehouse.identity import schema as ids


def _twin(world: World, of: str, score: float) -> tuple[int, int]:
    """A second record of ``of``'s customer and the match row waiting for review."""
    with world.engine.begin() as conn:
        p = t.table(t.Person)
        src = conn.execute(select(p).where(p.c.id == world.customer[of])).one()._mapping
        row: dict[str, Any] = {k: v for k, v in src.items() if k != "id"}
        row["record_key"] = f"P-{of}twin{int(score * 100):03d}"
        row["primary_email"] = f"{of}-twin-{score}@client.example.com"
        twin = int(conn.execute(p.insert().values(**row).returning(p.c.id)).scalar_one())
        x = t.table(ids.IdentityMatch)
        mid = conn.execute(
            x.insert()
            .values(
                entity="person",
                a_id=world.customer[of],
                b_id=twin,
                method="learned",
                score=score,
                fields={"name": 6.5, "email": -2.0, "bits": 4.5},
                decision="review",
                created_at=NOW,
                updated_at=NOW,
            )
            .returning(x.c.id)
        ).scalar_one()
    return twin, int(mid)


def test_admin_accepts_a_pair_then_splits_it_and_a_rep_cannot_review(world: World) -> None:
    twin, mid = _twin(world, "a1", 0.8)
    rep, boss = world.client(), world.client()
    sign_in(rep, "a1")
    sign_in(boss, "boss")
    assert rep.get("/review").status_code == 403
    page = boss.get("/review")
    assert page.status_code == 200
    assert "name +6.5" in page.text and "email -2.0" in page.text and str(twin) in page.text
    token = csrf_of(page.text)
    assert rep.post(f"/review/{mid}", data={"decision": "accept", "csrf": token}).status_code == 403
    r = boss.post(f"/review/{mid}", data={"decision": "accept", "csrf": token})
    assert r.status_code == 303 and "accepted" in boss.get(r.headers["location"]).text
    with world.engine.connect() as conn:
        cid = admin.find_customer(conn, str(twin))
        assert cid == world.customer["a1"]
        assert admin.review_queue(conn) == []
    view = boss.get(f"/customers/{cid}")
    assert "2 records" in view.text and "Split the ticked records" in view.text
    assert "Split the ticked records" not in rep.get(f"/customers/{cid}").text
    r = boss.post(f"/customers/{cid}/split", data={"record": str(twin), "csrf": token})
    assert r.status_code == 303
    with world.engine.connect() as conn:
        assert admin.find_customer(conn, str(twin)) == twin
    log = boss.get("/admin/audit").text
    assert "review-accept" in log and "identity-split" in log


def test_reject_and_never_link_keep_pairs_apart(world: World) -> None:
    twin1, m1 = _twin(world, "a1", 0.7)
    twin2, m2 = _twin(world, "b1", 0.6)
    boss = world.client()
    sign_in(boss, "boss")
    token = csrf_of(boss.get("/review").text)
    assert boss.post(f"/review/{m1}", data={"decision": "reject", "csrf": token}).status_code == 303
    r = boss.post(f"/review/{m2}", data={"decision": "never-link", "csrf": token})
    assert r.status_code == 303
    assert boss.post(f"/review/{m2}", data={"decision": "merge!", "csrf": token}).status_code == 400
    assert (
        boss.post("/review/999999", data={"decision": "reject", "csrf": token}).status_code == 404
    )
    with world.engine.connect() as conn:
        assert admin.review_queue(conn) == []
        assert admin.find_customer(conn, str(twin1)) == twin1
        assert admin.find_customer(conn, str(twin2)) == twin2
        pins = conn.execute(select(ids.IdentityPin.reason)).scalars().all()
    assert sorted(pins) == ["never-link", "rejected"]
