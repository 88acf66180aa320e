"""``kizuna sources types``: every installed source and channel type, and who provides it.

Types come from entry points (``kizuna.sources``, ``kizuna.channels``), so what this lists is
exactly what a workspace file may name; a plugin package shows up once it is installed.
"""

from __future__ import annotations

from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table

from flows.cli.common import guard


def required_fields(model: type[BaseModel]) -> list[str]:
    return [n for n, f in model.model_fields.items() if f.is_required() and n != "type"]


def model_template(name: str, model: type[BaseModel], package: str) -> str:
    """A commented example section for a type that ships no ``TEMPLATE`` of its own."""
    lines = [f"# {name}:                       # from {package}", f"#   type: {name}"]
    for field, info in model.model_fields.items():
        if field in ("type", "enabled"):
            continue
        value = (
            "…  # required"
            if info.is_required()
            else repr(info.get_default(call_default_factory=True))
        )
        lines.append(f"#   {field}: {value}")
    return "\n".join(lines) + "\n"


def plugin_source_templates() -> str:
    """Commented sections for ``kizuna init``: the built-in types that ship a ``TEMPLATE``
    beyond the hand-written ones (singer, dlt) and every third-party type installed."""
    from flows.sources.registry import source_types

    out = []
    for st in sorted(source_types().values(), key=lambda s: (not s.builtin, s.name)):
        own = getattr(st.module(), "TEMPLATE", None)
        if st.builtin:
            if isinstance(own, str):
                out.append(own)
            continue
        body = own if isinstance(own, str) else model_template(st.name, st.config_model, st.package)
        out.append(f"# `{st.name}` (from the {st.package} package):\n{body}")
    text = "\n".join(out)
    return "\n".join(f"  {line}" if line else "" for line in text.splitlines()) + "\n"


def _table() -> Table:
    from flows.push.channels import channel_type, channel_types
    from flows.sources.registry import source_types

    table = Table(title="Installed source and channel types")
    for col in ("kind", "type", "package", "required settings"):
        table.add_column(col)
    for st in sorted(source_types().values(), key=lambda s: (not s.builtin, s.name)):
        need = ", ".join(required_fields(st.config_model)) or "—"
        table.add_row("source", escape(st.name), escape(st.package), escape(need))
    for name, (_, package) in sorted(
        channel_types().items(), key=lambda c: (c[1][1] != "kizuna", c[0])
    ):
        model = channel_type(name).Config
        need = ", ".join(required_fields(model)) or "—"
        table.add_row("channel", escape(name), escape(package), escape(need))
    return table


def types() -> None:
    """List every installed source type and channel type (built-in or from a plugin)."""
    from flows.cli.main import console

    console.print(guard(_table))
