"""``type: salesforce`` sources: one stream per configured sObject.

```yaml
sources:
  sfdc:
    type: salesforce
    auth: {method: oauth_refresh, client_id: 3MVG9..., refresh_token_env: SFDC_REFRESH_TOKEN}
    quota_share: 0.5            # stop a run once half the org's daily API requests are used
    objects:
      Account:
        field_map: {corporate_number: CorporateNumber__c, attributes.rank: Rank__c}
      Contact:
        field_map: {family_name_kana: LastNameKana__c, given_name_kana: FirstNameKana__c}
      Opportunity: {api: auto, bulk_threshold: 50000}
```
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from simple_salesforce.api import Salesforce

from connectors.crm import quota as crm_quota
from connectors.crm import salesforce as sf
from connectors.crm import salesforce_auth, salesforce_write
from connectors.crm.write import WriteResult
from connectors.page import Cursor, Page
from flows.engine import StreamSpec, config_fingerprint
from flows.secrets import resolve_secret
from flows.sources.crm.common import LazyClient, apply_mapper, map_options
from flows.sources.crm.writeback import WritebackTarget
from flows.workspace import SourceConfig, Workspace
from kizuna.errors import KizunaError
from mappings.crm import salesforce as m

DEFAULT_OBJECTS = ("Account", "Contact", "Lead", "Opportunity", "Task", "Event")


class ObjectConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fields: list[str] = Field(default_factory=list)
    """Extra fields to read (field-map sources are added on their own)."""
    field_map: dict[str, str] = Field(default_factory=dict)
    api: Literal["rest", "bulk2", "auto"] = "rest"
    bulk_threshold: int = Field(default=50_000, ge=1)
    where: str | None = None
    delete_log: bool = True
    stage_history: bool = True
    """Opportunity only: read OpportunityHistory for every stage entered."""


class Config(SourceConfig):
    type: Literal["salesforce"] = "salesforce"
    auth: salesforce_auth.SalesforceAuth
    objects: dict[str, ObjectConfig] = Field(
        default_factory=lambda: {o: ObjectConfig() for o in DEFAULT_OBJECTS}
    )
    quota_share: float = Field(default=0.8, gt=0, le=1)
    """Share of the org's daily API quota a run may use before it stops (and resumes later)."""
    currency: str = Field(default="JPY", min_length=3, max_length=3)
    bulk_wait: float = Field(default=5.0, gt=0)
    writeback: dict[str, WritebackTarget] = Field(default_factory=dict)
    """Object → unified columns written back to it (see ``flows.sources.crm.writeback``)."""


def object_spec(name: str, oc: ObjectConfig) -> sf.ObjectSpec:
    fields = list(oc.fields) or list(sf.DEFAULT_FIELDS.get(name, ["Id"]))
    for src in oc.field_map.values():
        if src not in fields:
            fields.append(src)
    enrich = sf.stage_history if name == "Opportunity" and oc.stage_history else None
    return sf.ObjectSpec(
        name=name,
        fields=fields,
        delete_log=oc.delete_log,
        api=oc.api,
        bulk_threshold=oc.bulk_threshold,
        where=oc.where,
        enrich=enrich,
    )


def login(name: str, cfg: Config, ws: Workspace) -> Salesforce:
    def resolve(env: str, fld: str) -> SecretStr:
        return resolve_secret(env, file=str(ws.path), field=f"sources.{name}.auth.{fld}")

    return salesforce_auth.connect(cfg.auth, resolve)


def quota(name: str, cfg: Config, ws: Workspace, *, client: Salesforce | None = None) -> str:
    """``kizuna check``: logged in, and the org's daily API requests left (``/limits``); fails
    when a sync would stop at once because ``quota_share`` is already used."""
    quotas = crm_quota.salesforce(client or login(name, cfg, ws))
    api = quotas[0]
    if api.limit and api.remaining is not None:
        used = (api.limit - api.remaining) / api.limit
        if used >= cfg.quota_share:
            raise KizunaError(
                f"{used:.0%} of the org's daily API requests used ({api.remaining:,} of "
                f"{api.limit:,} left), at or past quota_share {cfg.quota_share:.0%}: a sync "
                f"would stop at once. Fix: wait for the 24-hour window to free requests, or "
                f"raise sources.{name}.quota_share"
            )
    return "logged in; " + "; ".join(q.text() for q in quotas)


def writeback_stream(target: str) -> str:
    return target.lower()


def write_back(
    name: str,
    cfg: Config,
    ws: Workspace,
    target: str,
    desired: dict[str, dict[str, Any]],
    *,
    dry_run: bool = False,
    client: Salesforce | None = None,
) -> WriteResult:
    """Update the records (by Salesforce Id) a stream read; never creates or deletes."""
    sf_client = client or login(name, cfg, ws)
    return salesforce_write.sync(sf_client, target, "Id", desired, "update_only", dry_run=dry_run)


def streams(
    name: str, cfg: Config, ws: Workspace, *, client: Salesforce | None = None
) -> list[StreamSpec]:
    """``client`` is injected by tests; otherwise one login per source, on first read."""
    get_client = LazyClient(partial(login, name, cfg, ws), client)
    opts = map_options(name, ws, cfg.currency, {o: oc.field_map for o, oc in cfg.objects.items()})
    out = []
    for obj, oc in cfg.objects.items():
        spec = object_spec(obj, oc)
        mapper = m.MAPPERS.get(obj, m.nothing)
        out.append(
            StreamSpec(
                connector=name,
                stream=obj.lower(),
                read=partial(_read, get_client, spec, cfg),
                cursor_type=sf.SalesforceCursor,
                source_id=_source_id,
                map=partial(apply_mapper, mapper, opts),
                fingerprint=config_fingerprint(
                    {"map": oc.field_map, "tz": opts.time_zone, "cur": cfg.currency}
                ),
            )
        )
    return out


def _source_id(raw: dict[str, Any]) -> str:
    return str(raw.get("Id") or "")


def _read(
    get_client: Any, spec: sf.ObjectSpec, cfg: Config, cursor: Cursor | None
) -> Iterator[Page[Any]]:
    assert cursor is None or isinstance(cursor, sf.SalesforceCursor)
    return sf.read_object(
        get_client(), spec, cursor, quota_share=cfg.quota_share, bulk_wait=cfg.bulk_wait
    )
