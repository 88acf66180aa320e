"""Thousands of recipients for the exactly-once tests, inserted in bulk, and the campaign they get."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select

from flows.push.config import PushConfig
from tests.support.push.push_seed import make_cfg
from warehouse import schema as t


def seed_recipients(engine: Engine, n: int, seed: int = 1) -> dict[str, set[int]]:
    """``n`` people; ~5% never opted in, ~3% suppressed, ~2% opted out after opting in."""
    rng = random.Random(seed)
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    people = [
        {
            "primary_email": f"r{i:05d}@customer.example",
            "full_name": f"顧客 {i:05d}",
            "family_name": "顧客",
            "attributes": {},
            "created_at": ts,
            "updated_at": ts,
        }
        for i in range(n)
    ]
    with engine.begin() as conn:
        conn.execute(insert(t.Person), people)
        rows = conn.execute(select(t.Person.id, t.Person.primary_email)).all()
        conn.execute(insert(t.PersonEmail), [{"email": e, "person_id": p} for p, e in rows])
        groups: dict[str, set[int]] = {"eligible": set(), "none": set(), "blocked": set()}
        consent: list[dict[str, Any]] = []
        suppressed: list[dict[str, Any]] = []
        for pid, email in rows:
            roll = rng.random()
            if roll < 0.05:
                groups["none"].add(pid)
                continue
            consent.append(_c(pid, "opted_in", ts))
            if roll < 0.08:
                suppressed.append(
                    {"email": email, "reason": "bounce", "source": "t", "recorded_at": ts}
                )
                groups["blocked"].add(pid)
            elif roll < 0.10:
                consent.append(_c(pid, "opted_out", ts.replace(month=2)))
                groups["blocked"].add(pid)
            else:
                groups["eligible"].add(pid)
        conn.execute(insert(t.Consent), consent)
        if suppressed:
            conn.execute(insert(t.Suppression), suppressed)
    return groups


def _c(pid: int, status: str, at: datetime) -> dict[str, Any]:
    return {
        "person_id": pid,
        "purpose": "marketing_mail",
        "status": status,
        "source": "import",
        "evidence": f"row {pid}",
        "recorded_at": at,
    }


def bulk_cfg(root: Path, channel: dict[str, Any], batch_size: int = 200) -> PushConfig:
    return make_cfg(
        root,
        segments={"everyone": {"field": "person.email", "exists": True}},
        campaigns={
            "bulk": {
                "segment": "everyone",
                "channel": "main",
                "batch_size": batch_size,
                "steps": [
                    {
                        "ja": {
                            "subject": "{{ person.name }} 様 新製品のご案内",
                            "text": "{{ person.name }} 様\nいつもありがとうございます。",
                        }
                    }
                ],
            }
        },
        outbound={"channels": {"main": channel}},
    )
