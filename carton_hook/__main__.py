"""`python -m carton_hook [OPTIONS] MODEL [ARGS...]`: run a packed model.

MODEL is a `.carton` file, an unpacked carton folder, or a model folder with its lock.
The entrypoint runs with `sys.argv = [MODEL, *ARGS]`; its return value is the exit code.
"""

from __future__ import annotations

import sys

USAGE = """\
usage: python -m carton_hook [--system-site-packages] [--verbose] MODEL [ARGS...]

Run MODEL (a .carton file, an unpacked carton, or a model folder with .carton/carton.lock)
with exactly its locked packages. Options go before MODEL; everything after MODEL is
passed to the model.

  --system-site-packages  let the interpreter's own packages through, after the locked ones
  -v, --verbose           show a traceback when carton itself fails
  -h, --help              show this help
"""


def main(argv: list[str]) -> int:
    options: set[str] = set()
    while argv and argv[0].startswith("-"):
        option = argv.pop(0)
        if option in ("-h", "--help"):
            print(USAGE, end="")
            return 0
        if option == "--":
            break
        if option not in ("--system-site-packages", "-v", "--verbose"):
            print(f"carton: error: unknown option {option}\n\n{USAGE}", file=sys.stderr, end="")
            return 2
        options.add("--verbose" if option == "-v" else option)
    if not argv:
        print(USAGE, file=sys.stderr, end="")
        return 2
    model, args = argv[0], argv[1:]

    from .api import load
    from .errors import CartonError

    try:
        carton = load(model, system_site_packages="--system-site-packages" in options or None)
        entry = carton.entrypoint()
    except CartonError as exc:
        if "--verbose" in options:
            import traceback

            traceback.print_exc()
        print(f"carton: error: {exc}", file=sys.stderr)
        return 1
    sys.argv = [model, *args]
    result = entry()
    if result is None or isinstance(result, int):
        return result or 0
    sys.exit(result)  # a message: printed, exit status 1, as sys.exit does


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
