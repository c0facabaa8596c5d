"""`python -m carton_hook [OPTIONS] MODEL [ARGS...]`: run a packed model; or a command.

MODEL is a `.carton` file, an unpacked carton folder, or a model folder with its lock.
The entrypoint runs with `sys.argv = [MODEL, *ARGS]`; its return value is the exit code.
Commands (`info`, `fetch`, `verify`, `cache`) are in `cli`; this module parses the few
run options by hand, because argparse would cost every start milliseconds.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing costs milliseconds at every start
if TYPE_CHECKING:
    from carton_hook.planning.planfile import PlanData

USAGE = """\
usage: python -m carton_hook [OPTIONS] MODEL [ARGS...]
       python -m carton_hook COMMAND [OPTIONS] ...

Run MODEL (a .carton file, an unpacked carton, or a model folder with .carton/carton.lock)
with exactly its locked packages. Options go before MODEL; everything after MODEL is
passed to the model. A model whose file is named like a command runs as ./NAME (or
after --).

options:
  --system-site-packages  let the interpreter's own packages through, after the locked ones
  -v, --verbose           say more, and show a traceback when carton itself fails
  -q, --quiet             say nothing but warnings and errors (no progress)
  --version               print carton's version and exit
  -h, --help              show this help and exit

commands (each has --help):
  info MODEL              what the carton holds and which lock section applies here
  fetch MODEL             put every package of that section into the cache, in parallel
  verify MODEL            check the archive, its lock and bundled wheels [--cache [--remove]]
  cache list              what the cache holds, with size and last use
  cache prune --older-than DAYS
                          remove what no process used for DAYS days (none in use)
  cache clear             remove everything no process uses now

exit status: the model's own when it runs; 1 when carton fails (or a check finds a
problem); 2 for a wrong command line; 130 after Ctrl-C.
"""

COMMANDS = ("info", "fetch", "verify", "cache")


def main(argv: list[str]) -> int:
    """Run a model or a command; Ctrl-C ends either with one line and exit status 130
    (the traceback with --verbose), as pip and uv do."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        from carton_hook.switches import env_flag

        if env_flag("CARTON_VERBOSE"):  # what -v / --verbose set, for a run or a command
            raise
        print("carton: interrupted", file=sys.stderr)
        return 130


def _main(argv: list[str]) -> int:
    if argv[:1] and argv[0] in COMMANDS:
        return _command(argv)
    options: set[str] = set()
    dashdash = False
    while argv and argv[0].startswith("-"):
        option = argv.pop(0)
        if option in ("-h", "--help"):
            print(USAGE, end="")
            return 0
        if option == "--version":
            from carton_hook.formats.version import CREATED_BY

            print(CREATED_BY)
            return 0
        if option == "--":
            dashdash = True
            break
        option = {"-v": "--verbose", "-q": "--quiet"}.get(option, option)
        if option not in ("--system-site-packages", "--verbose", "--quiet"):
            from carton_hook.errors import report

            report(f"unknown option {option}")
            print(f"\n{USAGE}", file=sys.stderr, end="")
            return 2
        options.add(option)
    if not argv:
        print(USAGE, file=sys.stderr, end="")
        return 2
    if argv[0] in COMMANDS and not dashdash:  # `-q cache clear`: options before a command
        # ... go after it (`cache` has commands of its own: `cache clear -q`), and before
        # a `--` that ends the command's options.
        rest = argv[1:]
        at = rest.index("--") if "--" in rest else len(rest)
        given = sorted(options - {"--system-site-packages"})
        return _command([argv[0], *rest[:at], *given, *rest[at:]])
    model, args = argv[0], argv[1:]
    if options & {"--verbose", "--quiet"}:
        import os

        # The worker and the model's subprocesses say as much as this process.
        os.environ["CARTON_VERBOSE" if "--verbose" in options else "CARTON_QUIET"] = "1"

    from carton_hook import loading
    from carton_hook.loading import carton_failed
    from carton_hook.loading.api import load

    # carton's errors are told apart from the model's by their class, and errors.py is
    # imported only when there is one to tell: not at every start.
    loading.MAY_FORK = True  # none of the model's code has run: its worker may be forked
    try:
        carton = load(model, system_site_packages="--system-site-packages" in options or None)
    except Exception as exc:
        if not carton_failed(exc):
            raise
        return _failed(exc, options, model)
    finally:
        loading.MAY_FORK = False
    try:
        try:
            entry = carton.entrypoint()  # imports the entrypoint's module
        except Exception as exc:
            if not carton_failed(exc) or isinstance(exc, ImportError):
                raise  # the model's own, or a locked wheel's import failure: below
            return _failed(exc, options, model)
        sys.argv = [model, *args]
        result = entry()
    except ImportError as exc:
        if carton_failed(exc):
            # A locked wheel could not be installed (offline, the network, a hash that
            # does not match): carton's failure, in one line, where the model imported it.
            if "--verbose" in options:
                raise
            from carton_hook.errors import report

            return report(exc, where=_where_imported(exc, carton.plan))
        if not isinstance(exc, ModuleNotFoundError):
            raise
        hint = _not_locked(exc, carton.plan, model)
        if hint is None:
            raise
        sys.excepthook(*sys.exc_info())  # the traceback, as Python prints it, then why
        print(hint, file=sys.stderr)
        return 1
    except Exception as exc:
        # carton's own failure inside a call of the model's (the cache's metadata pack found
        # damaged by its importlib.metadata call): one line, where the model asked.
        if not carton_failed(exc) or "--verbose" in options:
            raise
        from carton_hook.errors import report

        return report(exc, where=_where_imported(exc, carton.plan))
    if result is None or isinstance(result, int):
        return result or 0
    sys.exit(result)  # a message: printed, exit status 1, as sys.exit does


def _failed(exc: Exception, options: set[str], model: str) -> int:
    """carton could not run `model`: one line (a traceback with --verbose). A model that
    does not exist but is named like a command is a mistyped command (exit 2)."""
    import os

    from carton_hook.errors import report

    if not os.path.exists(model) and os.sep not in model:
        from difflib import get_close_matches

        close = get_close_matches(model, COMMANDS, n=1)
        if close:
            report(f"no such command or model {model!r} (did you mean {close[0]!r}?)")
            print(f"\n{USAGE}", file=sys.stderr, end="")
            return 2
    return report(exc, verbose="--verbose" in options)


def _where_imported(exc: BaseException, plan: PlanData) -> str:
    """` (needed at model.py:3)`: the last line of the model's own code on the
    traceback of `exc`, or nothing."""
    import os

    root = os.path.join(plan["model"], "")
    found = ""
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(root):
            found = f" (needed at {filename[len(root):]}:{tb.tb_lineno})"
        tb = tb.tb_next
    return found


def _not_locked(exc: ModuleNotFoundError, plan: PlanData, model: str) -> str | None:
    """The hint for a module the model imports that no locked package provides (not the
    standard library's, nor the model's own), or None."""
    import os

    name = (exc.name or "").partition(".")[0]
    imports, namespaces = plan["imports"], plan["namespaces"]
    if (not name or name in imports or name in namespaces
            or name in sys.stdlib_module_names or name in sys.builtin_module_names):
        return None
    root = plan["model"]
    if os.path.exists(os.path.join(root, f"{name}.py")) or os.path.isdir(os.path.join(root,
                                                                                    name)):
        return None
    requirements = plan["requirements"] or "requirements.txt"
    return (f"carton: no package in {model}'s lock provides {name!r}: add the distribution "
            f"that does to the model's {requirements}, then lock and pack it again")


def _command(argv: list[str]) -> int:
    """A runtime command; its output may go to a pipe that is closed early (`| head`)."""
    from carton_hook.commands.cli import main as command

    try:
        code = command(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader has all it wanted: end quietly, as `cat` would, and keep Python from
        # complaining again when it flushes stdout at exit.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
