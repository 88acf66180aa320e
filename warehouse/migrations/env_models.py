"""Every table module, imported in one place so the metadata Alembic compares is complete.

Any module named ``schema`` or ``*_schema`` in any wing of ``warehouse`` is found by walking
the package, so a new wing's tables need no line here.
"""

from __future__ import annotations

import importlib
import pkgutil

from sqlalchemy import MetaData

import warehouse
from warehouse.schema import Base


def metadata() -> MetaData:
    for mod in pkgutil.walk_packages(warehouse.__path__, prefix="warehouse."):
        leaf = mod.name.rsplit(".", 1)[-1]
        if leaf == "schema" or leaf.endswith("_schema"):
            importlib.import_module(mod.name)
    return Base.metadata
