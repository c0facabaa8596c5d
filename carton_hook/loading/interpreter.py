"""Interpreter mode: a loaded carton that behaves like `python` itself.

    CARTON_INTERPRETER=1 ./model.carton -m pyspark.daemon
    CARTON_INTERPRETER=1 ./model.carton -c "import numpy; print(numpy.__version__)"
    CARTON_INTERPRETER=1 ./model.carton script.py ARGS...
    echo "print(1)" | CARTON_INTERPRETER=1 ./model.carton

What engines need when they start "a Python" for their workers (Spark's
`PYSPARK_PYTHON`, Dask's workers): the carton's locked packages, isolated from the
host's site-packages; the entries the engine put on `PYTHONPATH` (pyspark and py4j
from Spark's own zip) still importable, after the model folder and the locked
packages; the model's own modules importable by name, so that functions pickled by
reference unpickle; and `sys.executable` a real interpreter that gives its children
the same environment (the carton's prefix).
"""

from __future__ import annotations

import os
import sys
from types import CodeType

# Options of `python` that change nothing here, or that the interpreter running the
# carton already applied from its own command line.
_IGNORED = frozenset("bBdEhiIOqsSvVWxX")
_USAGE = ("usage: CARTON_INTERPRETER=1 MODEL.carton [-u] [-m MODULE | -c CODE | SCRIPT | -] "
          "[ARGS...]")


def run(model: str, argv: list[str]) -> int:
    """Load `model`, then run `argv` as `python ARGV` would; returns the exit code."""
    from carton_hook.errors import CartonError, report
    from carton_hook.loading.api import load

    try:
        load(model)
    except CartonError as exc:
        return report(exc)
    keep_pythonpath()
    return _run_like_python(argv)


def keep_pythonpath() -> None:
    """Put the engine's PYTHONPATH entries (which isolation took out) back, after the
    model and the locked packages, which the finder serves first anyway. Subprocesses
    of an interpreter-mode carton do the same when they boot (CARTON_INTERPRETER is
    inherited)."""
    for entry in filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep)):
        if entry not in sys.path:
            sys.path.append(entry)


def _run_like_python(argv: list[str]) -> int:
    import runpy

    args = list(argv)
    while args and args[0].startswith("-") and args[0] not in ("-", "-m", "-c"):
        option = args.pop(0)
        if option == "--":
            break
        if option == "-u":
            _unbuffered()
        elif option in ("-W", "-X") and args:
            args.pop(0)  # their value; warnings and -X options are the outer Python's
        elif not (len(option) > 1 and set(option[1:]) <= _IGNORED | {"u"}):
            return _usage_error(f"unknown option {option}")
    try:
        if args[:1] == ["-m"]:
            if len(args) < 2:
                return _usage_error("-m needs a module")
            sys.argv = [args[1], *args[2:]]
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        elif args[:1] == ["-c"]:
            if len(args) < 2:
                return _usage_error("-c needs code")
            sys.argv = ["-c", *args[2:]]
            _exec(compile(args[1], "<string>", "exec"))
        elif args and args[0] != "-":
            script = args[0]
            sys.argv = list(args)
            sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
            runpy.run_path(script, run_name="__main__")
        else:
            sys.argv = args or [""]
            if sys.stdin.isatty():
                import code

                code.interact(banner="", local={"__name__": "__main__"}, exitmsg="")
            else:
                _exec(compile(sys.stdin.read(), "<stdin>", "exec"))
    except SystemExit as exc:
        return _exit_code(exc.code)
    return 0


def _exec(code: CodeType) -> None:
    import types

    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = __builtins__
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)  # noqa: S102 - what `python -c` does
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _unbuffered() -> None:
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(write_through=True)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _usage_error(message: str) -> int:
    from carton_hook.errors import report

    report(message)
    print(_USAGE, file=sys.stderr)
    return 2
