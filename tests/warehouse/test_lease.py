"""Leases: one holder per unit of work; a second taker waits or is told who has it."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine, update

from kizuna.errors import LeaseHeld
from warehouse import lease
from warehouse.db import write_transaction
from warehouse.lease_schema import Lease
from warehouse.state import now


def test_second_taker_is_told_who_holds_it_in_the_company_zone(engine: Engine) -> None:
    first = lease.acquire(engine, "stream:crm/Contact", run_id="run-a", what="x")
    try:
        with pytest.raises(LeaseHeld) as err:
            lease.acquire(
                engine,
                "stream:crm/Contact",
                run_id="run-b",
                what="stream crm/Contact is being synced",
                zone="Asia/Tokyo",
            )
        text = str(err.value)
        assert text.startswith("stream crm/Contact is being synced by run run-a on ")
        assert " JST; try again later" in text and "\n" not in text
        assert err.value.run_id == "run-a"
        # Another unit is free meanwhile.
        lease.acquire(engine, "stream:crm/Deal", run_id="run-b", what="x").release()
    finally:
        first.release()
    lease.acquire(engine, "stream:crm/Contact", run_id="run-b", what="x").release()


def test_a_waiting_taker_gets_the_unit_when_the_holder_finishes(engine: Engine) -> None:
    first = lease.acquire(engine, "identity", run_id="run-a", what="resolving")
    told: list[str] = []
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        if len(slept) == 3:
            first.release()

    second = lease.acquire(
        engine,
        "identity",
        run_id="run-b",
        what="resolving",
        wait=60,
        on_wait=told.append,
        sleep=sleep,
    )
    second.release()
    assert len(slept) == 3
    assert told == [told[0]] and told[0].startswith("waiting: resolving by run run-a")


def test_an_expired_lease_is_taken_over_and_named(engine: Engine) -> None:
    first = lease.acquire(engine, "campaign:spring", run_id="run-a", what="x", ttl=3600)
    first._stop.set()  # stands in for a holder on another host that stopped renewing
    with write_transaction(engine) as conn:
        conn.execute(
            update(Lease).values(host="elsewhere", expires_at=now() - timedelta(seconds=1))
        )
    second = lease.acquire(engine, "campaign:spring", run_id="run-b", what="x")
    assert second.previous is not None and second.previous.run_id == "run-a"
    assert not first.renew()  # the old holder learns it lost the unit
    with engine.connect() as conn:
        assert lease.live_owners(conn, [first.owner, second.owner]) == {second.owner}
    second.release()


def test_a_lease_of_a_dead_process_on_this_host_is_free_at_once(engine: Engine) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    first = lease.acquire(engine, "stream:a/b", run_id="run-a", what="x", ttl=3600)
    first._stop.set()
    with write_transaction(engine) as conn:
        conn.execute(update(Lease).values(pid=proc.pid))
    assert lease.holder(engine, "stream:a/b") is None
    second = lease.acquire(engine, "stream:a/b", run_id="run-b", what="x")
    assert second.previous is not None and second.previous.pid == proc.pid
    second.release()


def test_a_held_lease_is_renewed_while_work_goes_on(engine: Engine) -> None:
    held = lease.acquire(engine, "stream:slow/one", run_id="run-a", what="x", ttl=1.5)
    try:
        time.sleep(3.5)  # longer than the ttl: only renewal (every ttl/4) keeps it
        h = lease.holder(engine, "stream:slow/one")
        assert h is not None and h.owner == held.owner and not held.lost
    finally:
        held.release()
    assert lease.holder(engine, "stream:slow/one") is None
