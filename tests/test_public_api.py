"""The public face: ``__all__`` matches what each module exports, and layers only import down."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import runjournal

PACKAGE = Path(runjournal.__file__).parent
MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages([str(PACKAGE)], prefix="runjournal.")
    if not m.name.rsplit(".", 1)[-1].startswith("_")
)


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        pytest.skip(f"{name} declares no __all__")
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == []
    assert len(set(exported)) == len(exported)


def test_the_package_face_is_flat() -> None:
    for name in [
        "Tracker",
        "RunStatus",
        "ParamFilter",
        "FilterOp",
        "MetricPoint",
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


# Lower layers never import upper ones: cli -> tracker -> writer -> stores -> projection -> events -> model.
LAYER = {
    "model": 0,
    "errors": 0,
    "ids": 0,
    "filtering": 1,
    "events": 1,
    "eventlog": 1,
    "projection": 2,
    "stores": 3,
    "forks": 0,
    "exit": 4,
    "batching": 4,
    "writer": 4,
    "tracker": 5,
    "journal": 6,
    "cli": 7,
}
PURE = {"model", "errors", "ids", "filtering", "events", "projection"}


def _layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1].lstrip("_").split("_")[0] if len(parts) > 1 else ""


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_imports_point_down(path: Path) -> None:
    me = _layer_of("runjournal." + ".".join(path.relative_to(PACKAGE).with_suffix("").parts))
    if me not in LAYER:
        return
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
                assert LAYER.get(other, -1) <= LAYER[me], f"{path.name} imports {name} (upward)"
            if me in PURE:
                assert name.split(".")[0] not in {"aiosqlite", "anyio", "sqlite3"}, (
                    f"{path.name} is pure but imports {name}"
                )
