"""The history of flow runs made without a Prefect server (``flow_run``)."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Row, insert, select, update

from warehouse.run_schema import FlowRun
from warehouse.state import now


def start(engine: Engine, run_id: str, flow: str, parameters: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(
            insert(FlowRun),
            {
                "id": run_id,
                "flow": flow,
                "parameters": parameters,
                "host": socket.gethostname()[:255],
                "started_at": now(),
                "state": "running",
            },
        )


def finish(engine: Engine, run_id: str, error: str | None = None) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(FlowRun)
            .where(FlowRun.id == run_id)
            .values(
                finished_at=now(),
                state="failed" if error else "completed",
                error=error[:4000] if error else None,
            )
        )


def recent(engine: Engine, limit: int = 20) -> Sequence[Row[Any]]:
    with engine.connect() as conn:
        return conn.execute(select(FlowRun).order_by(FlowRun.started_at.desc()).limit(limit)).all()
