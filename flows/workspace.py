"""The workspace file (``kizuna.yaml``): the one place an admin configures a company.

Loading it either gives a fully validated :class:`Workspace` or raises ``ConfigError`` that
names the file, the field and what to write instead. Secrets are never written in the file:
a field ending in ``_env`` names an environment variable (or Prefect Secret block) instead.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flows.secrets import block_value
from flows.settings import settings
from kizuna.errors import ConfigError
from warehouse.identity.keys.normalize import normalize_domain

DEFAULT_FILE = "kizuna.yaml"


class Company(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    domains: list[str] = Field(default_factory=list)
    """The company's own mail domains: mail to/from them is internal, their people are staff."""
    time_zone: str = "Asia/Tokyo"
    phone_region: str = Field(default="JP", min_length=2, max_length=2)

    @field_validator("domains")
    @classmethod
    def _domains(cls, v: list[str]) -> list[str]:
        out = []
        for d in v:
            n = normalize_domain(d) or d.strip().lower()
            if "." not in n:
                raise ValueError(f"{d!r} is not a domain; write it like 'example.co.jp'")
            out.append(n)
        return out

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r}; use an IANA name such as 'Asia/Tokyo'"
            ) from None
        return v


class WarehouseConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = "sqlite:///kizuna.db"
    """SQLAlchemy URL. ``KIZUNA_WAREHOUSE_URL`` in the environment overrides it."""


class SourceConfig(BaseModel):
    """Fields every source has; each source type extends it (see ``flows.sources.registry``)."""

    model_config = ConfigDict(extra="forbid")

    type: str
    enabled: bool = True


class Workspace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    company: Company
    warehouse: WarehouseConfig = Field(default_factory=WarehouseConfig)
    sources: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Sections owned by later features; each is validated by its own model when used.
    identity: dict[str, Any] = Field(default_factory=dict)
    segments: dict[str, Any] = Field(default_factory=dict)
    campaigns: dict[str, Any] = Field(default_factory=dict)
    reminders: dict[str, Any] = Field(default_factory=dict)
    outbound: dict[str, Any] = Field(default_factory=dict)
    reports: dict[str, Any] = Field(default_factory=dict)
    quotes: dict[str, Any] = Field(default_factory=dict)
    web: dict[str, Any] = Field(default_factory=dict)

    # Set by load(); not part of the file.
    path: Path = Field(default=Path(DEFAULT_FILE), exclude=True)

    @property
    def root(self) -> Path:
        """Relative paths in the file are relative to the file's folder."""
        return self.path.parent

    def resolve(self, p: str | Path) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else (self.root / q)

    @property
    def warehouse_url(self) -> str:
        env = settings()
        url = env.warehouse_url or self.warehouse.url
        if not env.warehouse_url and env.warehouse_secret:
            url = block_value(env.warehouse_secret) or url
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            rel = url.removeprefix("sqlite:///")
            if rel and rel != ":memory:" and not rel.startswith("file:"):
                return f"sqlite:///{self.resolve(rel)}"
        return url


_FIXES = {
    "missing": "add this field",
    "extra_forbidden": "remove it, or check its spelling against `kizuna init`'s template",
    "literal_error": "use one of the allowed values",
    "string_too_short": "give it a value",
}


def _fields_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> set[str]:
    """The field names a model accepts at ``loc`` (following nested models)."""
    for part in loc:
        if model is None:
            return set()
        info = model.model_fields.get(str(part))
        ann = info.annotation if info else None
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return set(model.model_fields) if model is not None else set()


def config_error(
    exc: ValidationError, file: Path | str, prefix: str = "", model: type[BaseModel] | None = None
) -> ConfigError:
    """The first validation error as a ConfigError naming file, field and fix.

    An unknown field is reported before the missing one it probably misspells (``pth:`` is
    named, with "did you mean `path`"), and the two count as one problem.
    """
    errors = exc.errors()
    unknown = [e for e in errors if e["type"] == "extra_forbidden"]
    err = unknown[0] if unknown else errors[0]
    loc = ".".join(str(p) for p in err["loc"])
    field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
    msg = err["msg"].removeprefix("Value error, ")
    fix = _FIXES.get(err["type"], "")
    same: set[int] = {id(err)}
    if unknown:
        import difflib

        name, parent = str(err["loc"][-1]), tuple(err["loc"][:-1])
        missing = {
            str(e["loc"][-1]): e
            for e in errors
            if e["type"] == "missing" and tuple(e["loc"][:-1]) == parent
        }
        known = sorted(_fields_at(model, parent) | set(missing))
        guess = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        msg = f"unknown field {name!r}"
        if guess:
            fix = f"did you mean `{guess[0]}`? correct its spelling, or remove it"
            if guess[0] in missing:
                same.add(id(missing[guess[0]]))
        elif known:
            fix = f"remove it, or use one of: {', '.join(known)}"
    extra = len([e for e in errors if id(e) not in same])
    if extra:
        msg += f" (and {extra} more problem{'s' if extra > 1 else ''})"
    return ConfigError(msg, file=str(file), field=field, fix=fix)


def read(path: str | Path = DEFAULT_FILE) -> Workspace:
    p = Path(path)
    if not p.exists():
        raise ConfigError(
            "workspace file not found",
            file=str(p),
            fix="run `kizuna init` to write one, or pass --workspace",
        )
    try:
        data = _parse(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"not valid YAML ({getattr(exc, 'problem', exc)})",
            file=str(p),
            field=where,
            fix="check indentation and quoting near that line",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError("the file must be a mapping with `company:` and `sources:`", file=str(p))
    try:
        ws = Workspace.model_validate(data)
    except ValidationError as exc:
        raise config_error(exc, p, model=Workspace) from None
    return ws.model_copy(update={"path": p.resolve()})


_parsed: dict[str, Any] = {}
_SafeLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse(text: str) -> Any:
    """The file's YAML, parsed once per process per exact text: one sync reads the workspace
    in every task (about 75 ms each with the pure-Python parser). A copy is handed out, so
    a caller that changes it changes nothing else; libyaml's parser when it is installed."""
    data = _parsed.get(text)
    if data is None:
        data = yaml.load(text, Loader=_SafeLoader)
        if len(_parsed) >= 8:
            _parsed.clear()
        _parsed[text] = data
    return copy.deepcopy(data)
