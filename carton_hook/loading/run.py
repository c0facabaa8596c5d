"""Run a model's entrypoint: `module:function` (its return value is the exit code),
`module` (run as `__main__`), or `path/to/script.py` (run as `__main__`).

`sys.argv` is `[MODEL, *ARGS]` throughout, also while a module or script runs, unlike
`runpy`, which puts the script's own path in `sys.argv[0]`.
"""

from __future__ import annotations

import importlib
import os
import sys
import types

TYPE_CHECKING = False  # typing costs milliseconds; annotations need it only for mypy
if TYPE_CHECKING:
    from collections.abc import Callable
    from importlib.machinery import ModuleSpec
    from typing import Any


def resolve_entrypoint(model_dir: str | os.PathLike[str],
                       entrypoint: str) -> Callable[[], Any]:
    """A callable that runs the entrypoint and returns what should become the exit code."""
    if entrypoint.endswith(".py"):
        script = os.path.join(model_dir, entrypoint)
        if not os.path.isfile(script):
            raise _error(f"entrypoint {entrypoint!r}: no file {script}")
        return lambda: _run_main(compile(_read(script), script, "exec"), script, None)
    module_name, _, attrs = entrypoint.partition(":")
    if attrs:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            # The entrypoint's own module (or its package) is not there; a module that
            # it imports and that is missing is the model's error, said as it is.
            if exc.name is None or not (module_name == exc.name
                                        or module_name.startswith(exc.name + ".")):
                raise
            raise _error(f"entrypoint {entrypoint!r}: no module {module_name}") from None
        target: Any = module
        for attr in attrs.split("."):
            try:
                target = getattr(target, attr)
            except AttributeError:
                raise _error(f"entrypoint {entrypoint!r}: {module_name} has no "
                             f"{attrs}") from None
        if not callable(target):
            raise _error(f"entrypoint {entrypoint!r} is not callable")
        return target  # type: ignore[no-any-return]
    from importlib.util import find_spec  # this form only (`python -m` has imported it)

    spec = find_spec(module_name)
    if spec is None or spec.loader is None:
        raise _error(f"entrypoint {entrypoint!r}: no module {module_name}")
    if spec.submodule_search_locations is not None:  # a package: run its __main__
        spec = find_spec(f"{module_name}.__main__")
        if spec is None or spec.loader is None:
            raise _error(f"entrypoint {entrypoint!r} is a package without __main__")
    code = spec.loader.get_code(spec.name)  # type: ignore[union-attr]
    found = spec
    return lambda: _run_main(code, spec.origin, found)


_FIX = ("; fix `entrypoint` under [tool.carton] in the model's pyproject.toml (and pack "
        "the carton again)")


def _error(message: str) -> Exception:
    # errors.py is imported when an entrypoint is wrong, not at every start.
    from carton_hook.errors import EntrypointError

    return EntrypointError(message + _FIX)


def _run_main(code: types.CodeType, filename: str | None,
              spec: ModuleSpec | None) -> None:
    """Execute `code` as the `__main__` module, as `python -m`/`python script.py` do."""
    main = types.ModuleType("__main__")
    main.__file__ = filename
    main.__spec__ = spec
    main.__loader__ = spec.loader if spec else None
    main.__package__ = spec.parent if spec else None
    main.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = main
    exec(code, main.__dict__)  # noqa: S102 - running the model's own code is the point


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()
