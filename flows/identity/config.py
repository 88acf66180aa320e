"""The workspace ``identity:`` section: thresholds, normalisation and survivorship rules.

Example::

    identity:
      thresholds: {merge: 0.9, review: 0.6}   # above merge: one customer; between: review
      phone_region: JP                        # default: company.phone_region
      email_provider_aliases: true            # gmail dots and +tags are one mailbox
      free_mail_domains: [example-isp.ne.jp]  # added to the built-in list
      id_attributes: [member_no]              # custom fields that identify a person
      max_block_size: 100
      blocking:                               # which pairs are compared (terms: fam giv full
        rules: [[email], [phone], [full, org], [fam:4, giv:4, cap:10], [dob, postcode]]
        training_rules: [[fam:4, giv:4], [email], [phone], [dob]]   # EM passes (m)
        deterministic_rules: [[email], [full, dob]]  # surely one person (λ)
        recall: 0.6                           # share of true pairs those rules find
      survivorship:
        rules: [source_priority, most_recent, most_complete]
        source_priority: {"*": [salesforce, hubspot], title: [cards]}
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from flows.workspace import Workspace, config_error
from warehouse.identity.keys.matching import MatchSettings
from warehouse.identity.keys.normalize import FREE_MAIL_DOMAINS
from warehouse.identity.linkage import blocking_rules as br
from warehouse.identity.linkage.linker import LinkSettings
from warehouse.identity.survivorship import SurvivorshipRules

Rule = Literal["source_priority", "most_recent", "most_complete"]


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    merge: float = Field(default=0.9, gt=0, le=1)
    review: float = Field(default=0.6, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.review > self.merge:
            raise ValueError(
                f"review ({self.review}) is above merge ({self.merge}); "
                "set review at or below merge"
            )
        return self


def _default_rules() -> list[Rule]:
    return ["source_priority", "most_recent", "most_complete"]


class Survivorship(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: list[Rule] = Field(default_factory=lambda: _default_rules())
    source_priority: dict[str, list[str]] = Field(default_factory=dict)
    field_rules: dict[str, list[Rule]] = Field(default_factory=dict)


RuleList = list[list[str]]


class Blocking(BaseModel):
    """Blocking rules an admin can read and change; each term is a column (``fam``, ``giv``,
    ``full``, ``name``, ``dob``, ``postcode``, ``org``, ``domain``, ``corp``, ``ext``,
    ``address``, ``email``, ``phone``, ``local``), optionally cut to N characters (``fam:4``);
    ``cap:N`` skips that rule's blocks of more than N rows (a name or an office address)."""

    model_config = ConfigDict(extra="forbid")

    rules: RuleList | None = None
    training_rules: RuleList | None = None
    deterministic_rules: RuleList | None = None
    recall: float = Field(default=0.6, gt=0, le=1)

    @field_validator("rules", "training_rules", "deterministic_rules")
    @classmethod
    def _rules(cls, v: RuleList | None) -> RuleList | None:
        if v is not None:
            for rule in v:
                br.parse(rule)
        return v

    def link_settings(self, max_block: int) -> LinkSettings:
        base = LinkSettings()

        def pick(v: RuleList | None, default: tuple[br.Rule, ...]) -> tuple[br.Rule, ...]:
            return default if v is None else tuple(br.parse(r) for r in v)

        return replace(
            base,
            rules=pick(self.rules, base.rules),
            training_rules=pick(self.training_rules, base.training_rules),
            deterministic_rules=pick(self.deterministic_rules, base.deterministic_rules),
            recall=self.recall,
            max_block=max_block,
        )


class IdentityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    thresholds: Thresholds = Field(default_factory=Thresholds)
    phone_region: str | None = Field(default=None, min_length=2, max_length=2)
    email_provider_aliases: bool = True
    free_mail_domains: list[str] = Field(default_factory=list)
    id_attributes: list[str] = Field(default_factory=list)
    max_block_size: int = Field(default=100, ge=2, le=100000)
    partitions: int | None = Field(
        default=None,
        ge=1,
        le=1024,
        description="No longer used (keys are no longer split into partitions); accepted so "
        "older workspace files still load.",
    )
    blocking: Blocking = Field(default_factory=Blocking)
    survivorship: Survivorship = Field(default_factory=Survivorship)

    def match_settings(self, default_region: str = "JP") -> MatchSettings:
        extra = frozenset(d.strip().lower() for d in self.free_mail_domains)
        return MatchSettings(
            merge_threshold=self.thresholds.merge,
            review_threshold=self.thresholds.review,
            phone_region=(self.phone_region or default_region).upper(),
            provider_aliases=self.email_provider_aliases,
            free_mail_domains=FREE_MAIL_DOMAINS | extra,
            max_block_size=self.max_block_size,
            id_attributes=tuple(self.id_attributes),
            link=self.blocking.link_settings(self.max_block_size),
        )

    def survivorship_rules(self) -> SurvivorshipRules:
        s = self.survivorship
        return SurvivorshipRules(
            rules=tuple(s.rules),
            source_priority={k: tuple(v) for k, v in s.source_priority.items()},
            field_rules={k: tuple(v) for k, v in s.field_rules.items()},
        )


def identity_config(ws: Workspace) -> IdentityConfig:
    """The validated ``identity:`` section, or ConfigError naming file, field and fix."""
    try:
        return IdentityConfig.model_validate(ws.identity)
    except ValidationError as exc:
        raise config_error(exc, ws.path, prefix="identity") from None


def settings_for(ws: Workspace) -> tuple[MatchSettings, SurvivorshipRules]:
    cfg = identity_config(ws)
    return cfg.match_settings(ws.company.phone_region), cfg.survivorship_rules()
