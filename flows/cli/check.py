"""``kizuna check``: is this workspace ready to run? Asked of every part, nothing synced or sent.

One line per check with the fix when it fails: the workspace file, the warehouse, every
enabled source (its file, its secrets, its server: reachable, credentials accepted, folders
there; for a CRM one authenticated read per object and the API quota left, as the API
reports it: ``connectors.crm.quota``) and every outbound channel (a login and NOOP for SMTP,
a writable folder for the outbox; Slack and API channels have their secrets resolved, since
posting would send).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer
from rich.text import Text

from flows.cli.common import WorkspaceOpt, make_console
from flows.workspace import Workspace
from kizuna.errors import KizunaError

console = make_console()
TIMEOUT = 5.0


@dataclass(frozen=True)
class Check:
    what: str
    ok: bool
    detail: str

    def line(self) -> Text:
        mark = Text("✓ " if self.ok else "✗ ", style="green" if self.ok else "bold red")
        return mark + Text(f"{self.what}: {self.detail}")


def _try(what: str, fn: Any) -> Check:
    """Run one check; any error becomes its failed line (one line, with the fix)."""
    from flows.cli.errors import explain

    try:
        return Check(what, True, str(fn()))
    except Exception as exc:
        return Check(what, False, explain(exc))


def _secrets(data: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every ``*_env`` field in a section, and each entry of a tap's ``config_secrets`` or a
    dlt source's ``secret_args`` (key → secret name): (field path, variable name)."""
    if isinstance(data, dict):
        for k, v in data.items():
            if isinstance(k, str) and k.endswith("_env") and isinstance(v, str):
                yield f"{path}.{k}", v
            elif k in ("config_secrets", "secret_args") and isinstance(v, dict):
                yield from ((f"{path}.{k}.{a}", str(e)) for a, e in v.items())
            else:
                yield from _secrets(v, f"{path}.{k}")
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _secrets(v, f"{path}[{i}]")


def _reach(host: str, port: int) -> str:
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT):
            return f"{host}:{port} reachable"
    except OSError as exc:
        raise KizunaError(
            f"{host}:{port} unreachable ({exc.strerror or exc}). Fix: check the host and port, "
            "the network and the firewall"
        ) from None


def _endpoint(raw: dict[str, Any]) -> tuple[str, int] | None:
    """The server a source section names, by ``host``/``port`` or by a URL field."""
    if isinstance(raw.get("host"), str):
        port = raw.get("port") or {"ssl": 993, "starttls": 143, "none": 143}.get(
            str(raw.get("security", "ssl")), 993
        )
        return raw["host"], int(port)
    for key in ("base_url", "url", "instance_url"):
        if isinstance(raw.get(key), str) and "://" in raw[key]:
            u = urlsplit(raw[key])
            if u.hostname:
                return u.hostname, u.port or (443 if u.scheme == "https" else 80)
    return None


def _sheet(ws: Workspace, name: str, cfg: Any) -> str:
    from connectors.files import spreadsheet as sheet
    from flows.cli.sources import discover
    from flows.sources.spreadsheet import key_candidates
    from flows.storage import fetch_source

    path = fetch_source(ws, cfg.path)  # a remote file is checked as a worker will read it
    headers, how = sheet.header(
        path, encoding=cfg.encoding, delimiter=cfg.delimiter, sheet=cfg.sheet
    )
    key = sheet.pick_key(headers, key_candidates(cfg))
    if key is None:
        raise KizunaError(
            f"{path.name}: no key column among {', '.join(key_candidates(cfg))} ({how}). "
            f"Fix: set sources.{name}.key to the column that names a row"
        )
    unmapped = discover(ws, name)[0].unmapped
    note = f", {len(unmapped)} unmapped (kizuna sources discover {name})" if unmapped else ""
    return f"{path.name}: {how}, {len(headers)} headers, key {key}{note}"


def _path(ws: Workspace, name: str, cfg: Any) -> str:
    from flows.storage import fetch_source

    path: Path = fetch_source(ws, cfg.path)
    if not path.exists():
        raise KizunaError(
            f"{path} does not exist. Fix: point sources.{name}.path at it, or set enabled: false"
        )
    if path.is_dir():
        n = sum(1 for _ in path.iterdir())
        return f"{path.name}/ readable, {n} entries"
    with path.open("rb"):
        return f"{path.name} readable"


def _imap(ws: Workspace, name: str, cfg: Any) -> str:
    from connectors.mail.imap import open_client
    from flows.sources.imap import account

    client = open_client(account(name, cfg, ws))
    try:
        missing = [f for f in cfg.folders if client.select(_quote(f), readonly=True)[0] != "OK"]
    finally:
        with contextlib.suppress(Exception):  # the check already has its answer
            client.logout()
    if missing:
        raise KizunaError(
            f"logged in as {cfg.username}, but no folder {', '.join(missing)}. Fix: correct "
            f"sources.{name}.folders"
        )
    return f"logged in as {cfg.username}; folders {', '.join(cfg.folders)} readable"


def _quote(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def source_checks(ws: Workspace, name: str) -> Iterator[Check]:
    from flows.secrets import resolve_secret
    from flows.sources import registry

    raw = ws.sources[name]
    what = f"source {name}"
    cfg = registry.source_config(ws, name)
    if not cfg.enabled:
        yield Check(what, True, "disabled (skipped)")
        return
    bad = False
    for field, env in _secrets(raw, f"sources.{name}"):
        c = _try(f"{what} secret", lambda e=env, f=field: resolve_secret(e, field=f) and f"{e} set")
        bad = bad or not c.ok
        yield c
    if cfg.type == "spreadsheet":
        yield _try(what, lambda: _sheet(ws, name, cfg))
    elif hasattr(cfg, "path") and isinstance(getattr(cfg, "path", None), str):
        yield _try(what, lambda: _path(ws, name, cfg))
    ready = getattr(registry.module_of(cfg), "check", None)
    if callable(ready):  # the type's own offline check (a tap's executable, a dlt function)
        yield _try(what, lambda: ready(name, cfg, ws))
    probe = getattr(registry.module_of(cfg), "quota", None)
    if callable(probe):  # a CRM: one authenticated read proves reach, login, permission, quota
        if not bad:
            yield _try(f"{what} api", lambda: probe(name, cfg, ws))
        return
    end = _endpoint(raw)
    if end is not None:
        reach = _try(f"{what} server", lambda: _reach(*end))
        yield reach
        if reach.ok and not bad and cfg.type == "imap":
            yield _try(f"{what} login", lambda: _imap(ws, name, cfg))


def _smtp(ch: Any) -> str:
    import smtplib

    from flows.secrets import resolve_secret

    if ch.security == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(ch.host, ch.port, timeout=TIMEOUT)
    else:
        smtp = smtplib.SMTP(ch.host, ch.port, timeout=TIMEOUT)
    try:
        smtp.ehlo()
        if ch.security == "starttls":
            if not smtp.has_extn("starttls"):
                raise KizunaError(
                    f"{ch.host}:{ch.port} does not offer STARTTLS. Fix: use the submission "
                    "port, or `security: none` for a relay on this machine"
                )
            smtp.starttls()
            smtp.ehlo()
        if ch.username and ch.password_env:
            smtp.login(ch.username, resolve_secret(ch.password_env).get_secret_value())
        code, _ = smtp.noop()
    finally:
        with contextlib.suppress(smtplib.SMTPException):
            smtp.quit()
    who = f" as {ch.username}" if ch.username else ""
    return f"{ch.host}:{ch.port} accepts connections{who} (NOOP {code}); nothing sent"


def channel_checks(ws: Workspace) -> Iterator[Check]:
    from flows.push.config import push_config

    channels = ws.outbound.get("channels") or {}
    if not channels:
        return
    try:
        cfg = push_config(ws)
    except KizunaError as exc:
        from flows.cli.errors import explain

        yield Check("outbound", False, explain(exc))
        return
    for name, ch in cfg.outbound.channels.items():
        what = f"channel {name}"
        for field, env in _secrets(channels.get(name), f"outbound.channels.{name}"):
            yield _try(f"{what} secret", lambda e=env, f=field: _resolved(e, f))
        if ch.type == "smtp":
            yield _try(what, lambda c=ch: _smtp(c))
        elif ch.type == "outbox":
            yield _try(what, lambda c=ch: _outbox(ws, c))


def _resolved(env: str, field: str) -> str:
    from flows.secrets import resolve_secret

    resolve_secret(env, field=field)
    return f"{env} set"


def _outbox(ws: Workspace, ch: Any) -> str:
    import os

    folder = ws.resolve(ch.path or "outbox")
    probe = folder if folder.exists() else folder.parent
    if not os.access(probe, os.W_OK):
        raise KizunaError(f"{folder} cannot be written. Fix: choose a writable `path:`")
    return f"{folder.name}/ writable (messages are written there, never sent)"


def run_checks(workspace: Path) -> Iterator[Check]:
    from flows import config
    from flows.runtime import engine_for
    from flows.warehouse_url import describe

    try:
        ws = config.load(workspace)
    except KizunaError as exc:
        from flows.cli.errors import explain

        yield Check("workspace", False, explain(exc))
        return
    yield Check("workspace", True, f"{ws.path.name} valid, {len(ws.sources)} source(s)")
    yield _try(
        "warehouse",
        lambda: (
            engine_for(ws.warehouse_url) and f"{describe(ws.warehouse_url)} opens, schema current"
        ),
    )
    for name in ws.sources:
        try:
            yield from source_checks(ws, name)
        except KizunaError as exc:
            from flows.cli.errors import explain

            yield Check(f"source {name}", False, explain(exc))
    yield from channel_checks(ws)
    from flows.cli.staff.web_check import web_checks

    yield from web_checks(ws, _try)


def check(workspace: WorkspaceOpt = Path("kizuna.yaml")) -> None:
    """Check the workspace, the warehouse, every source and every channel; nothing is synced
    or sent. One line per check, with the fix for each that fails."""
    failed = 0
    for c in run_checks(workspace):
        console.print(c.line(), soft_wrap=True)
        failed += not c.ok
    if failed:
        console.print(Text(f"{failed} check(s) failed.", style="bold red"))
    raise typer.Exit(1 if failed else 0)
