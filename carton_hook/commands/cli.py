"""`python -m carton_hook COMMAND`: the commands beside running a model.

    info MODEL            what the carton holds, which lock section applies here
    fetch MODEL           put every wheel of that section into the cache, in parallel
    verify MODEL          check the archive, its lock and bundled wheels (and the cache)
    cache list|prune|clear

Running a model stays in `__main__`, which parses its few options by hand: argparse
costs the warm path milliseconds. Exit codes: 0 done, 1 failed (or a check found a
problem), 2 the command line is wrong.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from carton_hook.errors import CartonError, report
from carton_hook.formats.version import CREATED_BY

if TYPE_CHECKING:
    from carton_hook.cache.admin import Entry
    from carton_hook.planning.planfile import PlanData

PROG = "python -m carton_hook"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    """The parser of every command (also what `docs/cli.md` shows)."""
    top = argparse.ArgumentParser(
        prog=PROG, description="Inspect cartons and the cache (running a model: "
                               "python -m carton_hook --help).")
    top.add_argument("--version", action="version", version=CREATED_BY)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true",
                        help="say more, and show a traceback when carton fails")
    common.add_argument("-q", "--quiet", action="store_true",
                        help="say nothing but warnings and errors")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = sub.add_parser("info", parents=[common], help="describe a carton",
                          description="Describe MODEL: name, version, entrypoint, the lock's "
                                      "sections and which one applies to this interpreter, "
                                      "and its packages (version, size, where they come "
                                      "from, whether they are cached). Reads only.")
    info.add_argument("model", metavar="MODEL", type=Path)
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")

    fetch = sub.add_parser("fetch", parents=[common], help="cache every package of a carton",
                           description="Download, verify and unpack every wheel of the lock "
                                       "section that applies here into the cache, several at "
                                       "a time, so that MODEL then runs offline (and a "
                                       "container image can hold them in a layer).")
    fetch.add_argument("model", metavar="MODEL", type=Path)
    fetch.add_argument("--compile", action="store_true",
                       help="also compile every module of those packages (and of the "
                            "extracted model) now, on every core, instead of each one on "
                            "its first import: for an image whose cache is read-only")

    verify = sub.add_parser("verify", parents=[common], help="check a carton (and the cache)",
                            description="Check MODEL against its MANIFEST, its lock, and "
                                        "every bundled wheel against its hash and RECORD. "
                                        "Runs nothing, fetches nothing. Exit 1 if a problem "
                                        "was found (each printed on its own line).")
    verify.add_argument("model", metavar="MODEL", type=Path)
    verify.add_argument("--cache", action="store_true",
                        help="also re-hash the cache entries of the wheels the lock names")
    verify.add_argument("--remove", action="store_true",
                        help="with --cache: take the entries that fail out of the cache")

    cache = sub.add_parser("cache", help="list, prune or clear the cache",
                           description="The cache at $CARTON_HOME (default ~/.carton). "
                                       "Nothing a running process uses is ever removed.")
    cache_sub = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    listing = cache_sub.add_parser("list", parents=[common], help="what the cache holds",
                                   description="List installed wheels, extracted models, "
                                               "prefixes and plans, with size and last use.")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    prune = cache_sub.add_parser("prune", parents=[common], help="remove what was not used lately",
                                 description="Remove what no process has used for DAYS days "
                                             "(and none uses now).")
    prune.add_argument("--older-than", type=float, required=True, metavar="DAYS",
                       help="last used more than DAYS days ago (fractions allowed)")
    cache_sub.add_parser("clear", parents=[common], help="remove everything not in use",
                         description="Remove everything in the cache that no process uses "
                                     "now; what is in use stays, and is listed.")
    return top


def main(argv: list[str]) -> int:
    """Run one command; returns the exit code."""
    args = parser().parse_args(argv)  # exits 2 with a message on a usage error
    if args.quiet:
        os.environ["CARTON_QUIET"] = "1"
    if args.verbose:
        os.environ["CARTON_VERBOSE"] = "1"
    if args.command == "verify" and args.remove and not args.cache:
        print(f"{PROG} verify: error: --remove needs --cache", file=sys.stderr)
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except CartonError as exc:
        return report(exc, verbose=args.verbose)


def _home() -> Path:
    from carton_hook.cache.layout import carton_home

    return Path(carton_home())


def _info(args: argparse.Namespace) -> int:
    from carton_hook.commands.info import describe, format_description

    description = describe(args.model, _home())
    if args.json:
        print(json.dumps(description.to_json(), indent=2, sort_keys=True))
    else:
        print(format_description(description), end="")
    return EXIT_OK


def _fetch(args: argparse.Namespace) -> int:
    from carton_hook import loading
    from carton_hook.cache.layout import COMPLETE, is_published, packages_dir
    from carton_hook.commands.info import format_size
    from carton_hook.loading.api import plan_for
    from carton_hook.loading.prefix import ensure_prefix
    from carton_hook.loading.workerclient import run_worker

    home = str(_home())
    started, since = time.monotonic(), time.time()
    # Making the plan on a first run already installs what the model imports: those
    # count as fetched here (their markers are newer than this command).
    loaded = plan_for(os.path.realpath(args.model), home)
    plan = loaded.data
    wheels = plan["wheels"]
    cache = packages_dir(home)
    had = {sha for sha in wheels if _published_before(os.path.join(cache, sha, COMPLETE), since)}
    missing = sorted(sha for sha in set(wheels) - had
                     if not is_published(os.path.join(cache, sha)))
    if missing:
        run_worker("install", loaded.file, loading.WORKER_PYTHON, *missing, log=True)
    # And the prefix a run makes (its subprocesses' environment): a cache filled here
    # may be read-only when the model runs.
    ensure_prefix(plan, loaded.file, home, loading.WORKER_PYTHON)
    fetched = sorted(set(wheels) - had)
    size = sum(wheels[sha]["size"] for sha in fetched)
    if not args.quiet:
        from carton_hook.installing.progress import packages_of

        print(f"{plan['name']} {plan['version']}: {packages_of(len(wheels))} cached in {cache} "
              f"({len(fetched)} fetched, {format_size(size)}, in "
              f"{time.monotonic() - started:.1f} s; {len(had)} were already there)")
    if args.compile:
        _compile_all(plan, cache, home, args.quiet)
    return EXIT_OK


def _published_before(marker: str, since: float) -> bool:
    try:
        return os.stat(marker).st_mtime < since
    except OSError:
        return False


def _compile_all(plan: PlanData, cache: str, home: str, quiet: bool) -> None:
    """Compile every module of the plan's cache entries, and of its model folder where
    that is the cache's own copy, as their first imports would."""
    from carton_hook.installing.compileahead import compiler, tree_sources
    from carton_hook.loading.api import extracted

    roots = [os.path.join(cache, sha) for sha in sorted(plan["wheels"])]
    if extracted(plan, home):
        roots.append(plan["model"])
    started = time.monotonic()
    sources = [source for root in roots for source in tree_sources(root)]
    compiler(os.path.join(cache, ".tmp")).compile(sources)
    if not quiet:
        print(f"{plan['name']} {plan['version']}: {len(sources)} modules compiled in "
              f"{time.monotonic() - started:.1f} s")


def _verify(args: argparse.Namespace) -> int:
    from carton_hook.commands.verify import format_report, verify

    report = verify(args.model, cache=args.cache, remove_bad=args.remove)
    for problem in report.problems:
        print(problem)
    print(format_report(args.model, report, cache=args.cache))
    return EXIT_OK if report.ok else EXIT_FAILED


def _cache(args: argparse.Namespace) -> int:
    from carton_hook.cache import admin as cacheadmin
    from carton_hook.commands.info import format_size

    home = _home()
    if args.cache_command == "list":
        found = cacheadmin.entries(home)
        if args.json:
            print(json.dumps([{"kind": e.kind, "path": str(e.path), "label": e.label,
                               "size": e.size, "last-used": e.last_used,
                               "complete": e.complete} for e in found], indent=2))
            return EXIT_OK
        print(_table(found), end="")
        return EXIT_OK
    if args.cache_command == "prune":
        if args.older_than < 0:
            print(f"{PROG} cache prune: error: --older-than must be 0 or more days",
                  file=sys.stderr)
            return EXIT_USAGE
        done = cacheadmin.prune(home, args.older_than * 86400)
    else:
        done = cacheadmin.clear(home)
    if not args.quiet:
        for entry in done.removed:
            print(f"removed {entry.kind} {entry.label}")
        for entry in done.in_use:
            print(f"kept {entry.kind} {entry.label}: in use")
        print(f"freed {format_size(done.freed)} in {home}")
    return EXIT_OK


def _table(entries: list[Entry]) -> str:
    from carton_hook.commands.info import format_size as size

    if not entries:
        return "the cache is empty\n"
    now = time.time()
    rows = [("kind", "what", "size", "last used")]
    rows += [(e.kind, e.label + ("" if e.complete else " (incomplete)"), size(e.size),
              _ago(now - e.last_used)) for e in entries]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in rows]
    lines.append(f"{len(entries)} entries, {size(sum(e.size for e in entries))} in all")
    return "\n".join(lines) + "\n"


def _ago(seconds: float) -> str:
    if seconds < 3600:
        return "within the hour"
    if seconds < 86400:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} days ago"


COMMANDS = {"info": _info, "fetch": _fetch, "verify": _verify, "cache": _cache}
