"""`python -m carton_hook [OPTIONS] MODEL [ARGS...]`: run a packed model.

MODEL is a `.carton` file, an unpacked carton folder, or a model folder with its lock.
The entrypoint runs with `sys.argv = [MODEL, *ARGS]`; its return value is the exit code.
"""

from __future__ import annotations

import sys

USAGE = """\
usage: python -m carton_hook [--system-site-packages] [--verbose] MODEL [ARGS...]
       python -m carton_hook verify [--cache [--remove]] [--verbose] MODEL

Run MODEL (a .carton file, an unpacked carton, or a model folder with .carton/carton.lock)
with exactly its locked packages. Options go before MODEL; everything after MODEL is
passed to the model. A model file named like a command runs as ./NAME.

  --system-site-packages  let the interpreter's own packages through, after the locked ones
  -v, --verbose           show a traceback when carton itself fails
  -h, --help              show this help

commands:
  verify MODEL            check the archive against MANIFEST, the lock, and every bundled
                          wheel against its hash and RECORD; runs nothing, fetches nothing
    --cache               also re-hash the cache entries of the wheels the lock names
    --remove              with --cache: take entries that fail out of the cache
"""

VERIFY_OPTIONS = {"--cache", "--remove", "-v", "--verbose"}


def main(argv: list[str]) -> int:
    if argv[:1] == ["verify"]:
        return verify_main(argv[1:])
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


def verify_main(argv: list[str]) -> int:
    """`verify [--cache [--remove]] MODEL`: exit 0 when all is well, 1 when a problem was
    found (each printed on its own line), 2 for a usage error."""
    options = {a for a in argv if a.startswith("-")}
    models = [a for a in argv if not a.startswith("-")]
    if "-h" in options or "--help" in options:
        print(USAGE, end="")
        return 0
    unknown = options - VERIFY_OPTIONS
    if unknown or len(models) != 1 or ("--remove" in options and "--cache" not in options):
        why = (f"unknown option {sorted(unknown)[0]}" if unknown else
               "--remove needs --cache" if len(models) == 1 else "verify takes one MODEL")
        print(f"carton: error: {why}\n\n{USAGE}", file=sys.stderr, end="")
        return 2
    from pathlib import Path

    from .errors import CartonError
    from .verify import format_report, verify

    model = Path(models[0])
    try:
        report = verify(model, cache="--cache" in options, remove_bad="--remove" in options)
    except CartonError as exc:
        if options & {"-v", "--verbose"}:
            import traceback

            traceback.print_exc()
        print(f"carton: error: {exc}", file=sys.stderr)
        return 1
    for problem in report.problems:
        print(problem)
    print(format_report(model, report, cache="--cache" in options))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
