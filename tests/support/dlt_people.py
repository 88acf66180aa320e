"""A small dlt source for the tests: people from a JSON-lines file, incremental on ``updated``.

``token`` must be the test's secret (it arrives through Kizuna's resolver); ``fail_after``
raises after that many items, like an API that drops mid-run; ``leak`` fails after five items
with an error whose message carries the token (as an HTTP client's error names its URL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import dlt

EXPECTED_TOKEN = "dlt-secret-0ddba11-token"


@dlt.source(name="people_file")
def people_file(path: str, token: str, fail_after: int | None = None, leak: bool = False) -> Any:
    if token != EXPECTED_TOKEN:
        raise PermissionError("bad token")

    @dlt.resource(primary_key="id")
    def people(
        updated: Any = dlt.sources.incremental("updated", initial_value="2000-01-01"),  # noqa: B008
    ) -> Iterator[dict[str, Any]]:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if fail_after is not None and n > fail_after:
                    raise ConnectionError("the API went away")
                if leak and n > 5:  # an HTTP client's error naming the URL, token and all
                    raise PermissionError(f"GET https://api.example/people?token={token}: 403")
                yield json.loads(line)

    @dlt.resource(primary_key="n")
    def audit() -> Iterator[dict[str, Any]]:
        yield {"n": 1}

    return people, audit
