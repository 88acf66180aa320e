"""Every table module, imported in one place so the metadata Alembic compares is complete.

Add one import line here when a new ``*_schema`` module appears.
"""

from __future__ import annotations

import importlib
import pkgutil

from sqlalchemy import MetaData

import warehouse
from warehouse.schema import Base


def metadata() -> MetaData:
    for mod in pkgutil.iter_modules(warehouse.__path__):
        if mod.name == "schema" or mod.name.endswith("_schema"):
            importlib.import_module(f"warehouse.{mod.name}")
    return Base.metadata
