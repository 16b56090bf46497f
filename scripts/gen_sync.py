"""Generate ``src/runjournal/_sync_methods.py``: the synchronous faces' methods, from the async ones.

``python scripts/gen_sync.py`` writes it; ``--check`` exits 1 if it is out of date (a test
runs that). Like httpcore's ``unasync``, the synchronous face is never written by hand, so it
cannot drift from :class:`~runjournal.tracker.Tracker` and
:class:`~runjournal.run.RunHandle`:

- an ``async def X`` with a ``X_nowait`` twin becomes ``X`` bound straight to that twin
  (logging: no thread hop, no extra frame);
- any other ``async def X`` becomes ``X`` that awaits it on the background loop (queries,
  barriers, ``close``);
- a public plain method (``*_nowait``, ``flush_blocking``, ``stats``) is bound as it is.

Each method keeps its parameters, defaults, annotations and docstring.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import subprocess
import sys
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "runjournal" / "_sync_methods.py"

sys.path.insert(0, str(ROOT / "src"))

from runjournal import run, tracker

# (async class, generated class, attribute holding the async object, names written by hand)
FACES: list[tuple[type, str, str, frozenset[str]]] = [
    (
        tracker.Tracker,
        "SyncTrackerMethods",
        "_tracker",
        frozenset({"open", "open_in_memory", "run", "store"}),
    ),
    (run.RunHandle, "SyncRunMethods", "_handle", frozenset({"id", "experiment_id", "tracker"})),
]


def public_methods(cls: type, hand_written: Iterable[str]) -> list[tuple[str, Callable[..., Any]]]:
    """The methods a synchronous face of ``cls`` generates, in definition order."""
    skip = set(hand_written)
    found: list[tuple[str, Callable[..., Any]]] = []
    for name, member in vars(cls).items():
        if name.startswith("_") or name in skip or not inspect.isfunction(member):
            continue
        found.append((name, member))
    return found


def _arguments(signature: inspect.Signature) -> str:
    parts = []
    for parameter in list(signature.parameters.values())[1:]:
        if parameter.kind is parameter.VAR_POSITIONAL:
            parts.append(f"*{parameter.name}")
        elif parameter.kind is parameter.VAR_KEYWORD:
            parts.append(f"**{parameter.name}")
        elif parameter.kind is parameter.KEYWORD_ONLY:
            parts.append(f"{parameter.name}={parameter.name}")
        else:
            parts.append(parameter.name)
    return ", ".join(parts)


def _parameters(signature: inspect.Signature) -> str:
    parts = []
    star_done = False
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        if parameter.kind is parameter.VAR_POSITIONAL:
            star_done = True
            prefix = "*"
        elif parameter.kind is parameter.VAR_KEYWORD:
            prefix = "**"
        else:
            prefix = ""
        text = prefix + parameter.name
        if parameter.annotation is not parameter.empty:
            text += f": {parameter.annotation}"
        if parameter.default is not parameter.empty:
            text += f" = {parameter.default!r}"
        parts.append(text)
    return ", ".join(parts)


def _names(annotation: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(annotation, mode="eval")) if isinstance(n, ast.Name)}


def _imports(names: set[str], module: ModuleType, into: dict[str, set[str]]) -> None:
    for name in names:
        value = getattr(module, name, None)
        if name in vars(builtins):
            continue
        if isinstance(value, ModuleType):
            into.setdefault("", set()).add(value.__name__)
        elif value is not None:
            into.setdefault(_home(value, module), set()).add(name)
        else:
            raise SystemExit(f"cannot resolve {name!r} in {module.__name__}")


def _home(value: Any, module: ModuleType) -> str:
    home = getattr(value, "__module__", None)
    if home in (None, "types") or home == "builtins":
        return module.__name__  # a type alias defined there
    if home == "collections.abc" or str(home).startswith("_collections"):
        return "collections.abc"
    return str(home)


def _doc(member: Callable[..., Any], twin: str | None) -> str:
    doc = inspect.getdoc(member) or ""
    if twin is not None:
        first = doc.split("\n\n")[0]
        doc = f"{first}\n\nSynchronous, bound to ``{twin}``: no thread hop."
    return doc


def generate() -> str:
    """The source of ``_sync_methods.py``."""
    imports: dict[str, set[str]] = {}
    classes = []
    for cls, generated, attribute, hand_written in FACES:
        module = sys.modules[cls.__module__]
        imports.setdefault(cls.__module__, set()).add(cls.__name__)
        members = dict(vars(cls))
        body = [
            f"class {generated}(SyncFace):",
            f'    """The methods of :class:`{cls.__module__}.{cls.__name__}`, synchronous."""',
            "",
            f"    {attribute}: {cls.__name__}",
            "",
        ]
        direct: list[tuple[str, str]] = []
        for name, member in public_methods(cls, hand_written):
            signature = inspect.signature(member)
            for parameter in signature.parameters.values():
                if parameter.annotation is not parameter.empty:
                    _imports(_names(parameter.annotation), module, imports)
            returns = signature.return_annotation
            if returns is not signature.empty:
                _imports(_names(returns), module, imports)
            returns_text = "None" if returns is signature.empty else returns
            twin = f"{name}_nowait"
            if inspect.iscoroutinefunction(member) and twin in members:
                direct.append((name, twin))
                call = f"self.{attribute}.{twin}({_arguments(signature)})"
                doc = _doc(member, f"{cls.__name__}.{twin}")
            elif inspect.iscoroutinefunction(member):
                arguments = _arguments(signature)
                call = f'self._call("{name}", self.{attribute}.{name}'
                call += f", {arguments})" if arguments else ")"
                doc = _doc(member, None)
            else:
                direct.append((name, name))
                call = f"self.{attribute}.{name}({_arguments(signature)})"
                doc = _doc(member, None)
            for variant in typing.get_overloads(member):
                shape = inspect.signature(variant)
                for parameter in shape.parameters.values():
                    if parameter.annotation is not parameter.empty:
                        _imports(_names(parameter.annotation), module, imports)
                _imports(_names(shape.return_annotation), module, imports)
                body.append("    @overload")
                body.append(
                    f"    def {name}({_parameters(shape)}) -> {shape.return_annotation}: ..."
                )
            body.append(f"    def {name}({_parameters(signature)}) -> {returns_text}:")
            indented = "\n".join(("        " + line).rstrip() for line in doc.splitlines())
            body.append(f'        """{indented.lstrip()}\n        """')
            body.append(f"        return {call}")
            body.append("")
        pairs = ", ".join(f"({a!r}, {b!r})" for a, b in direct)
        body.append(f"    _DIRECT: ClassVar[tuple[tuple[str, str], ...]] = ({pairs},)")
        body.append(
            '    """Names bound on each instance straight to the async object\'s sync methods."""'
        )
        classes.append("\n".join(body))
    lines = [
        '"""The synchronous faces\' methods, generated from the async ones: do not edit.',
        "",
        "Written by ``python scripts/gen_sync.py`` from :class:`~runjournal.tracker.Tracker` and",
        ":class:`~runjournal.run.RunHandle`; ``tests/test_sync.py`` fails when it is out of date.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from typing import TYPE_CHECKING, ClassVar, overload",
        "",
        "from runjournal._portal import SyncFace",
        "",
        "if TYPE_CHECKING:",
    ]
    plain = sorted(imports.pop("", set()))
    lines += [f"    import {name}" for name in plain]
    for home in sorted(imports):
        lines.append(f"    from {home} import {', '.join(sorted(imports[home]))}")
    lines += ["", '__all__ = ["SyncRunMethods", "SyncTrackerMethods"]', "", ""]
    return _tidy("\n".join(lines) + "\n\n\n".join(classes) + "\n")


def _tidy(source: str) -> str:
    """The source as ruff sorts and formats it, so that the checked-in file stays lint-clean."""
    for command in (["check", "--fix", "--select", "I", "--quiet"], ["format", "--quiet"]):
        source = subprocess.run(
            [sys.executable, "-m", "ruff", *command, "--stdin-filename", str(TARGET), "-"],
            input=source,
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        ).stdout
    return source


def main(argv: list[str]) -> int:
    source = generate()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != source:
            print(f"{TARGET} is out of date: run python scripts/gen_sync.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(source)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
