"""The ``reports:`` section of the workspace file.

```yaml
reports:
  language: ja        # ja | en — the 日報 and the pipeline page
  stale_days: 14      # an open deal with no mail, meeting or stage change this long is stale
  stages: [リード, 提案, 見積, 交渉]   # optional funnel order; else by average probability
  follow_up_days: 14  # how far back a meeting still waits for a follow-up mail
```
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flows.workspace import Workspace, config_error


class ReportsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    language: Literal["ja", "en"] = "ja"
    stale_days: int = Field(default=14, ge=1, le=365)
    stages: list[str] = Field(default_factory=list)
    follow_up_days: int = Field(default=14, ge=1, le=90)


def reports_config(ws: Workspace) -> ReportsConfig:
    try:
        return ReportsConfig.model_validate(ws.reports)
    except ValidationError as exc:
        raise config_error(exc, ws.path, "reports") from None
