"""The house rules, read off the source: each of carton_hook's rooms imports only the
rooms below it, each of carton_backend's only the rooms before it, the runtime never
imports the build half, the build half uses only the shared formats, nothing imports the
command edge, there are no import cycles, and importing the runtime pulls in nothing
third-party."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THIRD_PARTY = ("packaging", "urllib3", "filelock", "installer", "isal", "tomli", "build")

# carton_hook's rooms, lowest first: a module may import its own room and the rooms
# below it (docs/architecture.md). The package's face (`carton_hook/__init__.py`, whose
# `load` imports loading's API when called) and `python -m carton_hook` sit on top.
LAYERS = [
    {"carton_hook.errors", "carton_hook.switches", "carton_hook.log", "carton_hook.trace",
     "carton_hook.system"},
    {"carton_hook.formats"},
    {"carton_hook.network", "carton_hook.filesystem"},
    {"carton_hook.cache"},
    {"carton_hook.planning"},
    {"carton_hook.installing"},
    {"carton_hook.loading"},
    {"carton_hook.commands"},
    {"carton_hook", "carton_hook.__main__", "carton_hook.zipmain"},
]
# carton_backend's rooms, in the order of the packing algorithm (docs/architecture.md):
# a module may import its own room and the rooms before it.
BACKEND_LAYERS = [
    {"carton_backend.errors", "carton_backend.logsetup", "carton_backend.detzip",
     "carton_backend.config"},
    {"carton_backend.resolution"},
    {"carton_backend.network"},
    {"carton_backend.wheels"},
    {"carton_backend.lock"},
    {"carton_backend.packing"},
    {"carton_backend", "carton_backend.__main__", "carton_backend.buildapi",
     "carton_backend.cli"},
]
# The one import of a later room, said in docs/architecture.md: the configuration checks
# the platform names a model sets with the resolution's own table of them.
BACKEND_EXCEPTIONS = frozenset({("carton_backend.config", "carton_backend.resolution.platforms")})
# What the build half may use of the runtime: the shared formats, HTTP, atomic writes,
# the errors and the on/off switches.
SHARED = ("carton_hook.formats", "carton_hook.network", "carton_hook.filesystem",
          "carton_hook.errors", "carton_hook.switches")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, top_level_only: bool, module: str | None = None) -> set[str]:
    """The absolute names `path` (the module `module`) imports; `top_level_only`: those
    that run when it is imported (not inside a function, not under `if TYPE_CHECKING:`)."""
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes: list[ast.AST] = []
    if top_level_only:
        stack: list[ast.AST] = list(tree.body)
        while stack:
            node = stack.pop()
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                stack.extend(node.orelse)
            elif isinstance(node, (ast.If, ast.Try)):
                stack.extend(ast.iter_child_nodes(node))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                nodes.append(node)
    else:
        nodes = list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            # `from pkg import mod` imports the module pkg.mod where there is one.
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                names.add(sub if _is_module(sub) else base)
    return names


def _is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _modules(package: str) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))
            if "__pycache__" not in p.parts}


def _layer(module: str, layers: list[set[str]] = LAYERS) -> int:
    """The room of `module` in `layers`: its own name's, or its package's."""
    name = module
    while name:
        for number, layer in enumerate(layers):
            if name in layer:
                return number
        name = name.rpartition(".")[0]
    raise AssertionError(f"{module} is in no room of its package's layers: place it")


def test_every_module_of_the_runtime_is_in_a_room() -> None:
    for module in _modules("carton_hook"):
        _layer(module)


def _upward(module: str, names: set[str], layers: list[set[str]] = LAYERS,
            allowed: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    """What `module` imports from a room above its own in `layers` (its package's)."""
    package = module.split(".")[0] + "."
    return [f"{module} imports {name}" for name in sorted(names)
            if name.startswith(package) and (module, name) not in allowed
            and _layer(name, layers) > _layer(module, layers)]


def test_each_room_imports_only_the_rooms_below_it() -> None:
    upward = []
    for module, path in _modules("carton_hook").items():
        upward += _upward(module, _imports(path, top_level_only=False))
    assert upward == []


def test_an_import_from_a_room_above_is_caught(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from carton_hook.cache.layout import COMPLETE\n"
                     "    from ..cache import inuse\n")
    names = _imports(probe, top_level_only=False, module="carton_hook.formats.probe")
    assert _upward("carton_hook.formats.probe", names) == [
        "carton_hook.formats.probe imports carton_hook.cache.inuse",
        "carton_hook.formats.probe imports carton_hook.cache.layout"]


def test_each_room_of_the_build_half_imports_only_the_rooms_before_it() -> None:
    upward = []
    for module, path in _modules("carton_backend").items():
        upward += _upward(module, _imports(path, top_level_only=False), BACKEND_LAYERS,
                          BACKEND_EXCEPTIONS)
    assert upward == []
    probe = {"carton_backend.packing.pack"}  # a later room, from an earlier one: caught
    assert _upward("carton_backend.network.pypi", probe, BACKEND_LAYERS) == [
        "carton_backend.network.pypi imports carton_backend.packing.pack"]


def test_the_runtime_never_imports_the_build_half() -> None:
    for module, path in _modules("carton_hook").items():
        names = _imports(path, top_level_only=False)
        assert not [n for n in names if n.split(".")[0] == "carton_backend"], module


def test_the_build_half_uses_only_the_shared_rooms() -> None:
    for module, path in _modules("carton_backend").items():
        runtime = {n for n in _imports(path, top_level_only=False)
                   if n.split(".")[0] == "carton_hook"}
        # `import carton_hook` finds the runtime's files to copy (runtimefiles.py).
        beyond = {n for n in runtime - {"carton_hook"} if not n.startswith(SHARED)}
        assert beyond == set(), (module, beyond)


def test_nothing_imports_the_command_edge() -> None:
    edge = ("carton_hook.commands", "carton_hook.__main__", "carton_hook.zipmain")
    for package in ("carton_hook", "carton_backend"):
        for module, path in _modules(package).items():
            if module.startswith(edge):
                continue
            found = {n for n in _imports(path, top_level_only=False) if n.startswith(edge)}
            assert found == set(), (module, found)


def test_there_are_no_import_cycles() -> None:
    graph = {module: {n for n in _imports(path, top_level_only=True) if n != module}
             for package in ("carton_hook", "carton_backend")
             for module, path in _modules(package).items()}
    cycles = []
    done: set[str] = set()

    def visit(module: str, trail: list[str]) -> None:
        if module in trail:
            cycles.append(" -> ".join([*trail[trail.index(module):], module]))
            return
        if module in done or module not in graph:
            return
        for name in sorted(graph[module]):
            visit(name, [*trail, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    assert cycles == []


@pytest.mark.parametrize("module", ["carton_hook", "carton_hook.formats.lockfile",
                                    "carton_hook.formats.archive", "carton_hook.planning.models",
                                    "carton_hook.loading.api", "carton_hook.__main__"])
def test_importing_the_runtime_loads_nothing_third_party(module: str) -> None:
    code = (f"import sys, json, importlib; importlib.import_module({module!r}); "
            "print(json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    loaded = {name.split(".")[0] for name in json.loads(proc.stdout)}
    assert not loaded & set(THIRD_PARTY), loaded & set(THIRD_PARTY)
    assert "carton_backend" not in loaded


def test_every_package_folder_is_shipped() -> None:
    """A room added under carton_hook is in the distribution too (an installed carton
    without it fails on its first import)."""
    import fnmatch

    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    folders = {_module_name(p.parent) for package in ("carton_hook", "carton_backend")
               for p in (ROOT / package).rglob("__init__.py")}
    assert {f for f in folders if not any(fnmatch.fnmatch(f, i) for i in include)} == set()


def test_errors_are_reported_by_one_function() -> None:
    """`carton: error:` is written by errors.report alone (and by an executable carton's
    bootstrap, which runs before the runtime it would import is unpacked)."""
    writers = []
    for package in ("carton_hook", "carton_backend"):
        for module, path in _modules(package).items():
            if module in ("carton_hook.errors", "carton_hook.zipmain"):
                continue
            if "carton: error:" in path.read_text(encoding="utf-8"):
                writers.append(module)
    assert writers == []


def test_every_error_is_a_carton_error_with_a_kind() -> None:
    """One tree: each exception class carton defines is a CartonError, and names the
    kind that carries it over the worker boundary (a private one, which never leaves
    its module, aside)."""
    from carton_hook.errors import CartonError

    found = []
    for package in ("carton_hook", "carton_backend"):
        for module, path in _modules(package).items():
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef) and not node.name.startswith("_") and any(
                        "Error" in ast.unparse(b) or ast.unparse(b) == "Exception"
                        for b in node.bases):
                    found.append((module, node.name))
    assert len(found) >= 15
    for module, name in found:
        cls = getattr(__import__(module, fromlist=[name]), name)
        assert issubclass(cls, CartonError), (module, name)
        assert isinstance(cls.kind, str) and cls.kind, (module, name)
