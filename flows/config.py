"""Open a workspace: read the file, then check every source section against its source type.

Kept apart from ``workspace`` (the file's model) because checking a source section needs the
source registry, and the registry itself is written against the model.
"""

from __future__ import annotations

from pathlib import Path

from flows.sources.registry import validate_sources
from flows.workspace import DEFAULT_FILE, Workspace, read


def load(path: str | Path = DEFAULT_FILE) -> Workspace:
    """The workspace at ``path``, every mistake reported with the file, the field and the fix."""
    ws = read(path)
    validate_sources(ws)
    return ws
