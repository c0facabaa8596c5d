"""`python -m carton_backend`: lock and pack a model folder without a PEP 517 frontend."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from carton_backend.config import PYTHON_VERSION, ModelConfig, load_config
from carton_backend.lock.lockdiff import describe_changes
from carton_backend.lock.locking import LockRequest, lock_model, lock_state
from carton_backend.logsetup import setup_logging
from carton_backend.packing.modelfiles import model_files
from carton_backend.packing.pack import write_carton
from carton_hook.errors import CartonError, report
from carton_hook.formats.lockfile import LOCK_PATH, Lock, load_lock
from carton_hook.formats.version import CREATED_BY


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m carton_backend",
        description="Lock a model folder's requirements and pack it into a .carton file.",
    )
    parser.add_argument("--version", action="version", version=CREATED_BY)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true",
                        help="show debug output, and a traceback on errors")
    common.add_argument("-q", "--quiet", action="store_true", help="show warnings and errors only")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    lock = sub.add_parser("lock", parents=[common], help="bring .carton/carton.lock up to date",
                          description="Resolve the model's requirements into .carton/carton.lock "
                                      "(nothing happens if the lock is current).")
    lock.add_argument("model_dir", type=Path, metavar="MODEL_DIR")
    lock.add_argument("--upgrade", action="store_true",
                      help="re-resolve every package to the newest allowed version")
    lock.add_argument("--upgrade-package", action="append", default=[], metavar="NAME",
                      help="re-resolve this package (repeatable); others keep their versions")
    lock.add_argument("--platform", action="append", default=[], metavar="NAME",
                      type=_platform,
                      help="also lock for this platform, named as uv's --python-platform "
                           "names it (repeatable); kept until the requirements change")
    lock.add_argument("--python", action="append", default=[], metavar="3.N",
                      type=_python_version,
                      help="the Python versions for --platform (repeatable; default: the "
                           "building one and [tool.carton] python); without --platform, "
                           "also lock for this python3.N on PATH")
    lock.add_argument("--check", action="store_true",
                      help="change nothing: print 'current' or 'stale: WHY', then the files "
                           "the lock depends on; exit 0 if current, 1 if stale")

    pack = sub.add_parser("pack", parents=[common], help="lock if needed, then write the .carton",
                          description="Lock the model folder if its lock is not current, then "
                                      "write <name>-<version>.carton.")
    pack.add_argument("model_dir", type=Path, metavar="MODEL_DIR")
    pack.add_argument("-o", "--outdir", type=Path, default=None, metavar="OUTDIR",
                      help="where to write the .carton (default: MODEL_DIR/dist)")
    pack.add_argument("--list", action="store_true",
                      help="print the files that would be packed, one per line, and pack "
                           "nothing (no lock either)")

    repro = sub.add_parser(
        "check-reproducible", parents=[common], help="pack twice and compare",
        description="Lock the model folder if its lock is not current, then pack it twice, "
                    "from two copies in two temporary folders with file times a day apart, "
                    "and compare the two .carton files. Exit 0 if they are identical, 1 if "
                    "not (naming the first member that differs).")
    repro.add_argument("model_dir", type=Path, metavar="MODEL_DIR")

    export = sub.add_parser(
        "export-pylock", parents=[common], help="write the lock as PEP 751 pylock.toml",
        description="Lock the model folder if its lock is not current, then write its "
                    "sections as a PEP 751 pylock.toml, which pip (26.1 or newer) and uv "
                    "install with `-r`. Bundled wheels become `path` entries relative to "
                    "the file.")
    export.add_argument("model_dir", type=Path, metavar="MODEL_DIR")
    export.add_argument("--environment", metavar="ID",
                        help="export this section only (e.g. cp311-linux-x86_64); default: "
                             "every section, each package with its sections' markers")
    export.add_argument("-o", "--output", type=Path, metavar="FILE",
                        help="where to write (default: MODEL_DIR/pylock.toml); the name "
                             "must be pylock.toml or pylock.NAME.toml")
    return parser


def _platform(value: str) -> str:
    from carton_backend.resolution.platforms import PlatformError, parse_platform

    try:
        parse_platform(value)
    except PlatformError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def _python_version(value: str) -> str:
    if not PYTHON_VERSION.match(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a MAJOR.MINOR version like 3.12")
    return value


def _export_pylock(config: ModelConfig, args: argparse.Namespace) -> int:
    from packaging.pylock import is_valid_pylock_path

    from carton_backend.lock.pylock import export_pylock
    from carton_hook.filesystem import atomic

    out = (args.output or config.root / "pylock.toml").absolute()
    if not is_valid_pylock_path(out):
        report(f"{out}: PEP 751 names the file pylock.toml or pylock.NAME.toml; pip and uv "
               "refuse other names")
        return 2
    lock = lock_model(config)
    text = export_pylock(lock, config.root, out, args.environment)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(out, text.encode("utf-8"))
    if not args.quiet:
        print(out)
    return 0


def _check_reproducible(config: ModelConfig, *, quiet: bool) -> int:
    from carton_backend.packing.reproducible import check_reproducible

    outcome = check_reproducible(config)
    if outcome.reproducible:
        if not quiet:
            print(f"reproducible: two builds of {config.root} have sha256 {outcome.first}")
        return 0
    return report(f"{config.root}: two builds differ ({outcome.first} and {outcome.second}); "
                  f"first difference: {outcome.difference}")


def _current_lock(config: ModelConfig) -> Lock | None:
    """The lock as it is before locking: None if there is none, or it cannot be read (the
    locking that follows says why, or replaces it)."""
    path = config.root / LOCK_PATH
    try:
        return load_lock(path) if path.exists() else None
    except CartonError:
        return None


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 error, 2 usage)."""
    args = _parser().parse_args(argv)
    setup_logging(logging.DEBUG if args.verbose else logging.WARNING if args.quiet
                  else logging.INFO)
    try:
        config = load_config(args.model_dir.resolve())
        if args.command == "export-pylock":
            return _export_pylock(config, args)
        if args.command == "check-reproducible":
            return _check_reproducible(config, quiet=args.quiet)
        if args.command == "lock" and args.check:
            files, stale = lock_state(config)
            print("current" if stale is None else f"stale: {stale}")
            for path in files:
                print(path)
            return 0 if stale is None else 1
        if args.command == "lock":
            request = LockRequest(upgrade=args.upgrade,
                                  upgrade_packages=tuple(args.upgrade_package),
                                  platforms=tuple(args.platform), python=tuple(args.python))
            before = _current_lock(config)
            after = lock_model(config, request)
            if not args.quiet:
                for line in describe_changes(before, after):
                    print(f"carton: {line}", file=sys.stderr)
        elif args.list:
            for f in model_files(config):
                print(f.relpath)
        else:
            lock = lock_model(config)
            out = (args.outdir or config.root / "dist").resolve()
            path = write_carton(config, lock, out)
            if not args.quiet:
                print(path)
    except CartonError as exc:
        return report(exc, verbose=args.verbose)
    except KeyboardInterrupt:
        return 130
    return 0
