"""The house rules that code can check (``ARCHITECTURE.md`` says why they exist).

Layers import only downward: ``lint-imports`` checks that from the contracts in
``pyproject.toml``. Here: wings reach each other only through the modules their
``__init__.py`` lists in ``__all__``, every wing says what it is for, and modules and folders
stay small enough to read.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("kizuna", "connectors", "mappings", "warehouse", "flows", "deployments")
# Alembic's folder is a package for packaging's sake, not a capability.
NOT_WINGS = ("warehouse.migrations",)
MAX_LINES = 450
MAX_MODULES = 15


def _dotted(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts)


@cache
def wings() -> dict[str, tuple[ast.Module, list[str]]]:
    """Each wing package (a package inside a layer) with its parsed ``__init__`` and surface."""
    out: dict[str, tuple[ast.Module, list[str]]] = {}
    for layer in LAYERS:
        for init in sorted((ROOT / layer).rglob("__init__.py")):
            name = _dotted(init.parent / "x")[: -len(".x")]
            if name == layer or name.startswith(NOT_WINGS):
                continue
            tree = ast.parse(init.read_text(encoding="utf-8"))
            surface: list[str] = []
            for node in tree.body:
                if isinstance(node, ast.Assign) and any(
                    isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
                ):
                    surface = list(ast.literal_eval(node.value))
            out[name] = (tree, surface)
    return out


def wing_of(module: str) -> str | None:
    found = [w for w in wings() if module == w or module.startswith(w + ".")]
    return max(found, key=len) if found else None


def test_every_wing_says_what_it_is_for_and_names_its_surface() -> None:
    assert len(wings()) >= 15
    for name, (tree, surface) in wings().items():
        doc = ast.get_docstring(tree)
        assert doc and len(doc) > 40, (
            f"{name}/__init__.py: say in two or three lines what it is for"
        )
        assert surface, f"{name}/__init__.py: list the public modules in __all__"
        for mod in surface:
            path = ROOT.joinpath(*name.split("."), mod)
            assert path.with_suffix(".py").exists() or (path / "__init__.py").exists(), (
                f"{name}.__all__ names {mod!r}, which does not exist"
            )


def test_wings_import_each_other_only_through_their_surface() -> None:
    graph = grimp.build_graph(*LAYERS)
    wrong = []
    for importer in sorted(graph.modules):
        home = wing_of(importer)
        for imported in graph.find_modules_directly_imported_by(importer):
            wing = wing_of(imported)
            if wing is None or imported == wing:
                continue
            if home is not None and (home == wing or home.startswith(wing + ".")):
                continue
            leaf = imported[len(wing) + 1 :].split(".")[0]
            if leaf not in wings()[wing][1]:
                wrong.append(f"{importer} imports {imported}: not in {wing}.__all__")
    assert not wrong, "\n".join(wrong)


def _modules() -> list[Path]:
    return [
        p
        for layer in (*LAYERS, "tests", "bench")
        for p in sorted((ROOT / layer).rglob("*.py"))
        if "versions" not in p.parts
    ]


@pytest.mark.parametrize("limit", [MAX_LINES])
def test_modules_stay_small(limit: int) -> None:
    big = [
        f"{p.relative_to(ROOT)}: {n} lines"
        for p in _modules()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > limit
    ]
    assert not big, f"split these by noun (limit {limit}):\n" + "\n".join(big)


def test_folders_stay_small() -> None:
    folders: dict[Path, int] = {}
    for p in _modules():
        if p.name != "__init__.py":
            folders[p.parent] = folders.get(p.parent, 0) + 1
    big = [f"{d.relative_to(ROOT)}: {n} modules" for d, n in folders.items() if n > MAX_MODULES]
    assert not big, "give these folders wings:\n" + "\n".join(big)
