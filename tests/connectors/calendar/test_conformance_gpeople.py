"""The conformance suite for the ``gpeople`` source (contacts), on a stateful fake."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from connectors.calendar.gpeople import PeopleCursor
from connectors.throttle import RetryPolicy, TokenBucket
from flows.engine import StreamSpec
from flows.sources import gpeople as source_gpeople
from flows.workspace import Company, Workspace
from tests.support.conformance import ConformanceSuite, SourceHarness
from tests.support.fakes.fake_people import FakePeople
from tests.support.fakes.google_fakes import service


class PeopleHarness:
    def __init__(self, tmp_path: Path) -> None:
        self.name = "gpeople"
        self.supports_deletes = True
        self.people = FakePeople()
        self.ws = Workspace(
            company=Company(name="アワコ", domains=["ourco.co.jp"]), path=tmp_path / "k.yaml"
        )

    def spec(self) -> StreamSpec:
        cfg = source_gpeople.Config(
            accounts=["hanako@ourco.co.jp"],
            service_account_key_env="UNUSED",
            other_contacts=False,
            page_size=2,
        )
        (spec,) = source_gpeople.streams(
            "contacts",
            cfg,
            self.ws,
            service_for=lambda _a: service("people", "v1", self.people),  # type: ignore[arg-type]
            options={
                "policy": RetryPolicy(max_retries=0, sleep=lambda s: None),
                "budget": TokenBucket(1e6, 1e6),
            },
        )
        return spec

    def add(self, n: int) -> None:
        for _ in range(n):
            self.people.add()

    def remove(self) -> None:
        self.people.delete(sorted(self.people.items)[0])

    def expected_ids(self) -> set[str]:
        return set(self.people.items)

    def force_reset(self, engine: Engine) -> None:
        self.people.expire()

    def order(self, cursor: Any) -> tuple[Any, ...]:
        assert isinstance(cursor, PeopleCursor)
        if cursor.page_token:
            _, upto, offset = (int(x) for x in cursor.page_token.split("."))
            return (upto, 0, offset)
        assert cursor.sync_token is not None
        return (int(cursor.sync_token), 1, 0)


class TestPeopleConformance(ConformanceSuite):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> Iterator[SourceHarness]:
        yield PeopleHarness(tmp_path)
