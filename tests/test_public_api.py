"""The public face: ``__all__`` matches what each module exports, and layers only import down."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path
from types import ModuleType
from typing import ParamSpec, TypeVar

import pytest

import runjournal

PACKAGE = Path(runjournal.__file__).parent
MODULES = [
    "runjournal",
    *sorted(
        m.name
        for m in pkgutil.walk_packages([str(PACKAGE)], prefix="runjournal.")
        if "._" not in m.name
    ),
]


def _declared(module: ModuleType) -> list[str]:
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{module.__name__} declares no __all__"
    return list(exported)


def _defined_names(statements: list[ast.stmt]) -> set[str]:
    """The names that these top-level statements bind by definition or assignment (not import)."""
    names: set[str] = set()
    for node in statements:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.If | ast.Try):
            names |= _defined_names(node.body + node.orelse)
    return names


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    """Every name in ``__all__`` is there, once."""
    module = importlib.import_module(name)
    exported = _declared(module)
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == []
    assert len(set(exported)) == len(exported)


@pytest.mark.parametrize("name", MODULES)
def test_every_public_definition_is_in_all(name: str) -> None:
    """A public name defined in a module (not imported into it) is exported, or made private.

    Type variables are typing machinery, not API: they may keep their short names.
    """
    module = importlib.import_module(name)
    assert module.__file__ is not None
    defined = _defined_names(ast.parse(Path(module.__file__).read_text()).body)
    public = {
        n
        for n in defined
        if not n.startswith("_")
        and not isinstance(getattr(module, n, None), ModuleType | TypeVar | ParamSpec)
    }
    assert sorted(public - set(_declared(module))) == []


def test_the_package_face_is_flat() -> None:
    for name in [
        "Tracker",
        "RunStatus",
        "ParamFilter",
        "FilterOp",
        "MetricPoint",
        "MetricArrays",
        "Experiment",
        "Run",
        "ArtifactRef",
        "RunJournalError",
        "ExperimentNotFound",
        "RunNotFound",
        "ArtifactNotFound",
        "InvalidStateError",
    ]:
        assert name in runjournal.__all__


# Lower layers never import upper ones: faces (cli, ui) -> journal -> tracker -> writer -> stores
# -> projection -> events -> model. Every module must be placed here (a new one fails until it is).
LAYER = {
    "model": 0,
    "errors": 0,
    "ids": 0,
    "chunks": 0,  # the metric chunk codec: pure, below the events that carry its bytes
    "filtering": 1,
    "filter": 1,  # filter_syntax: the grammar both faces parse
    "rollups": 1,
    "mlflow": 1,  # MLflow's search grammar and value mapping, pure (the server builds on them)
    "events": 1,
    "eventlog": 1,
    "projection": 2,
    "stores": 3,
    "forks": 0,
    "exit": 4,
    "batching": 4,
    "uploads": 4,  # artifact content on its way to the writer, and back out
    "writer": 4,
    "context": 1,
    "system": 1,  # system_metrics: the sampler thread, imported by a run that asks for it
    "tracker": 5,
    "run": 5,
    "portal": 5,
    "sync": 6,
    "active": 7,
    "journal": 6,
    "cli": 7,
    "ui": 7,
    "server": 7,  # runjournal server: MLflow's REST API and artifact proxy beside the dashboard
    "integrations": 8,  # framework adapters over the faces
}
PURE = {
    "model",
    "errors",
    "ids",
    "chunks",
    "filtering",
    "filter",
    "rollups",
    "mlflow",
    "events",
    "projection",
}


def _layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1].lstrip("_").split("_")[0] if len(parts) > 1 else ""


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_imports_point_down(path: Path) -> None:
    me = _layer_of("runjournal." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    if me == "init":  # the package's own __init__: the flat public face, above everything
        return
    assert me in LAYER, f"{path.name}: place its layer {me!r} in LAYER"
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name.startswith("runjournal."):
                other = _layer_of(name)
                assert other in LAYER, f"{path.name} imports {name}, whose layer is not placed"
                assert LAYER[other] <= LAYER[me], f"{path.name} imports {name} (upward)"
            if me in PURE:
                assert name.split(".")[0] not in {"aiosqlite", "anyio", "sqlite3"}, (
                    f"{path.name} is pure but imports {name}"
                )
