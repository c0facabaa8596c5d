"""The two halves' rules: the runtime never imports the build half, the build half uses
only the runtime's format modules, and importing the runtime pulls in nothing
third-party."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORMAT_MODULES = {"carton_hook", "carton_hook.errors", "carton_hook.lockfile",
                  "carton_hook.wheelcheck", "carton_hook.importnames", "carton_hook.archive",
                  "carton_hook.membernames", "carton_hook.urls",
                  "carton_hook.members", "carton_hook.paths"}
THIRD_PARTY = ("packaging", "urllib3", "filelock", "installer", "tomli", "build")


def imported_modules(package: str) -> dict[str, set[str]]:
    """For each module file of `package`, the absolute names it imports."""
    out = {}
    for path in sorted((ROOT / package).glob("*.py")):
        module = f"{package}.{path.stem}" if path.stem != "__init__" else package
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package if node.level == 1 else ""
                    target = f"{base}.{node.module}" if node.module else base
                    names.update({target} if node.module else
                                 {f"{base}.{a.name}" for a in node.names})
                elif node.module:
                    names.add(node.module)
        out[module] = names
    return out


def test_the_runtime_never_imports_the_build_half() -> None:
    for module, names in imported_modules("carton_hook").items():
        assert not [n for n in names if n.split(".")[0] == "carton_backend"], module


def test_the_build_half_uses_only_the_runtimes_format_modules() -> None:
    for module, names in imported_modules("carton_backend").items():
        runtime = {n for n in names if n.split(".")[0] == "carton_hook"}
        assert runtime <= FORMAT_MODULES, (module, runtime - FORMAT_MODULES)


@pytest.mark.parametrize("module", ["carton_hook", "carton_hook.lockfile",
                                    "carton_hook.archive", "carton_hook.source",
                                    "carton_hook.__main__"])
def test_importing_the_runtime_loads_nothing_third_party(module: str) -> None:
    code = (f"import sys, json, importlib; importlib.import_module({module!r}); "
            "print(json.dumps(sorted(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    loaded = {name.split(".")[0] for name in json.loads(proc.stdout)}
    assert not loaded & set(THIRD_PARTY), loaded & set(THIRD_PARTY)
    assert "carton_backend" not in loaded
