"""Which locked wheels a model will import, read from its own source: the entrypoint
module and the model's modules it imports, parsed (never run).

On the first run the worker installs these while it makes the plan, together and in
parallel, instead of one worker run per first import. Only imports that run whenever the
module does are counted: those at module level, in an `if __name__ == "__main__":`
block, and at the top of the entrypoint function's body. An import inside a condition,
a loop, a `try` or another function is left to the first import, so an optional or
rarely used package is still not downloaded until it is used. A name imported in a way
no parser sees (`importlib.import_module(name)`) is installed on first import, as
before. Nothing depends on the guess being right.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from carton_hook.planning.planfile import closure

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ast

    from carton_hook.planning.planfile import PlanData

MAX_MODULES = 200  # a model with more local modules than this is only partly read


def imported_names(model_dir: str, entrypoint: str) -> set[str]:
    """Dotted names imported by the entrypoint's module and, following them, by the
    model's own modules (absolute imports only)."""
    start = _entry_file(model_dir, entrypoint)
    if start is None:
        return set()
    function = entrypoint.partition(":")[2].split(".")[0]
    names: set[str] = set()
    queue, seen = [start], {start}
    while queue and len(seen) <= MAX_MODULES:
        path = queue.pop()
        for name in _imports(path, function if path == start else ""):
            names.add(name)
            local = _local_file(model_dir, name)
            if local is not None and local not in seen:
                seen.add(local)
                queue.append(local)
    return names


def wheels_to_prefetch(plan: PlanData, names: set[str]) -> list[str]:
    """The wheels a first run installs before the model's imports ask: those that provide
    `names`, each before the wheels it depends on (`planfile.closure`)."""
    return closure(plan, predicted_wheels(plan, names))


def predicted_wheels(plan: PlanData, names: set[str]) -> list[str]:
    """The wheels (sha256) that provide `names`, per the plan's import index."""
    imports: dict[str, str] = plan["imports"]
    found: list[str] = []
    for name in sorted(names):
        parts = name.split(".")
        for i in range(len(parts), 0, -1):  # `google.protobuf.message` -> google.protobuf
            sha = imports.get(".".join(parts[:i]))
            if sha is not None:
                if sha not in found:
                    found.append(sha)
                break
    return found


def _entry_file(model_dir: str, entrypoint: str) -> str | None:
    if entrypoint.endswith(".py"):
        path = os.path.join(model_dir, entrypoint)
        return path if os.path.isfile(path) else None
    return _local_file(model_dir, entrypoint.partition(":")[0])


def _local_file(model_dir: str, name: str) -> str | None:
    """The model's own source file for module `name`, if it has one."""
    base = os.path.join(model_dir, *name.split("."))
    for candidate in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def _imports(path: str, function: str) -> Iterator[str]:
    """The imports that run whenever the module at `path` runs (and, when `function` is
    its entrypoint function, when that function runs)."""
    import ast  # here: the worker, told the names by the model's process, never parses

    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return
    for node in tree.body:
        guarded = isinstance(node, ast.If) and _is_main_guard(node.test)
        entry = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function
        if guarded or entry:
            yield from _names(node.body)  # type: ignore[attr-defined]
    yield from _names(tree.body)


def _names(body: list[ast.stmt]) -> Iterator[str]:
    import ast

    for node in body:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names
                        if alias.name != "*")


def _is_main_guard(test: ast.expr) -> bool:
    import ast

    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
            and test.left.id == "__name__" and len(test.comparators) == 1
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")
