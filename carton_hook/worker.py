"""The runtime's worker: a short-lived subprocess that does every cold-path job.

    python -m carton_hook.worker plan MODEL PLANFILE IDENTITY [INTERPRETER]
    python -m carton_hook.worker install PLANFILE INTERPRETER SHA256 [SHA256 ...]
    python -m carton_hook.worker derive MODEL DEST

Selection needs `packaging`, fetching `urllib3`, locking `filelock`, unpacking
`installer`. The model's process must never import them under their public names (a
model may lock other versions of them), so they are imported here, in another process.
A failure prints one JSON line `{"error": ...}` on stderr and exits 3.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CartonError
from .paths import carton_home, packages_dir
from .plan import dump_plan, read_plan

if TYPE_CHECKING:
    from .progress import Progress

# Each command imports what it needs when it runs: the plan command, on every cold
# start, has no use for urllib3, installer or filelock (tens of milliseconds).

# Downloads wait on the network, so every wheel of a first run starts at once; the
# CPU work (checks, unpacking) shares the GIL, and compiling goes to `bytecode`'s helpers.
WORKERS = 8
EXIT_ERROR = 3


def write_plan(model_arg: str, plan_file: str, identity: str,
               prefetch_for: str | None = None) -> None:
    """Open the model (extracting a .carton), select its section, write the plan."""
    from .select import make_plan
    from .source import open_model

    if prefetch_for:
        from .bytecode import compiler

        compiler().start()  # a first run compiles soon: its helpers start meanwhile
    model = open_model(Path(model_arg), Path(carton_home()))
    plan = make_plan(model)
    plan["identity"] = identity
    write_plan_file(plan_file, plan)
    plan["_file"] = plan_file

    def make_prefix() -> None:
        # Here rather than in the model's process, which would import what it needs
        # (~15 ms) after this process ends, instead of while the wheels download.
        from .envprefix import ensure_prefix

        ensure_prefix(plan, carton_home(), sys.executable)

    if prefetch_for:
        prefetch(plan, str(model.root), model.entrypoint, prefetch_for, meanwhile=make_prefix)
    else:
        make_prefix()


def prefetch(plan: dict[str, Any], model_dir: str, entrypoint: str, interpreter: str,
             meanwhile: Callable[[], None] = lambda: None) -> None:
    """Install the wheels the model's source imports (and what they depend on) now, in
    this run, together: the first run then starts no worker per first import. What could
    not be installed is printed (one JSON line on stdout), so that the import that needs
    it reports why at once instead of trying the same download again. `meanwhile` runs
    while they download."""
    from .finder import closure
    from .predict import imported_names, predicted_wheels

    shas = closure(plan, predicted_wheels(plan, imported_names(model_dir, entrypoint)))
    failed = _install_each(plan, shas, interpreter, meanwhile)
    if failed:
        print(json.dumps({"prefetch-failed": {sha: str(exc) for sha, exc in failed.items()}}))


def write_plan_file(plan_file: str, plan: dict[str, Any]) -> None:
    """Publish a plan: written beside its place, then renamed over it."""
    target = Path(plan_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".tmp-{os.getpid()}-{target.name}")
    tmp.write_bytes(dump_plan(plan))
    os.replace(tmp, target)


def derive(model_arg: str, dest: str) -> None:
    """Copy MODEL's model folder, bundled wheels included, to `dest`."""
    from .source import copy_model

    copy_model(Path(model_arg), Path(dest), Path(carton_home()))


def install(plan_file: str, interpreter: str, shas: list[str]) -> None:
    """Make sure each wheel is in the cache, several at a time."""
    plan = read_plan(plan_file)
    if plan is None:
        raise CartonError(f"the plan {plan_file} is gone or unreadable; run the carton again")
    _install_all(plan, shas, interpreter)


def _install_all(plan: dict[str, Any], shas: list[str], interpreter: str) -> None:
    failed = _install_each(plan, shas, interpreter)
    if failed:
        raise next(iter(failed.values()))


def _install_each(plan: dict[str, Any], shas: list[str], interpreter: str,
                  meanwhile: Callable[[], None] = lambda: None) -> dict[str, Exception]:
    """Install the wheels `shas`, several at a time, running `meanwhile` in this thread
    after they started; what failed, in `shas` order."""
    from .bytecode import compiler
    from .cache import is_complete
    from .progress import from_env

    root = Path(packages_dir())
    missing = [sha for sha in shas if not is_complete(root / sha, sha)]
    progress = from_env() if missing else None
    if missing:
        compiler().start()  # the helpers start while the first wheels download
    if progress is not None:
        size = sum(plan["wheels"][sha]["size"] for sha in missing)
        progress.start(f"{plan['name']} {plan['version']}: installing {len(missing)} "
                       f"packages ({size / 1e6:.1f} MB) into {root}", len(missing), size)
    failed: dict[str, Exception] = {}
    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            # Progress counts what is installed now, not what the cache already had.
            futures = {sha: pool.submit(_install_one, plan, root, sha, interpreter,
                                        progress if sha in missing else None)
                       for sha in shas}
            meanwhile()
            for sha, future in futures.items():
                try:
                    future.result()
                except (CartonError, OSError, zipfile.BadZipFile, KeyError) as exc:
                    failed[sha] = exc
    finally:
        if progress is not None:
            progress.stop()
    return failed


def _install_one(plan: dict[str, Any], root: Path, sha: str, interpreter: str,
                 progress: Progress | None = None) -> None:
    from .cache import ensure
    from .unpack import install_wheel

    wheel = plan["wheels"][sha]
    what = f"{wheel['dist']} {wheel['version']} ({wheel['name']})"
    on_bytes = progress.advance if progress is not None else None

    def fill(work: Path, tree: Path) -> None:
        local = work / wheel["name"]
        if wheel["url"]:
            _download(wheel, sha, local, what, on_bytes)
        else:
            _copy_bundled(plan, wheel["bundled"], sha, local, what, on_bytes)
        if progress is not None:
            progress.doing(f"unpacking {wheel['dist']}")
        entry = root / sha
        destdir = work / "dest"
        install_wheel(local, wheel["name"], entry, destdir, interpreter)
        os.rename(destdir / os.path.relpath(entry, entry.anchor), tree)

    ensure(root, sha, fill)
    if progress is not None:
        progress.finished_one()


def _download(wheel: dict[str, Any], sha: str, dest: Path, what: str,
              on_bytes: Callable[[int], None] | None) -> None:
    """From the mirror (`CARTON_INDEX_URL`) if one is set and has the file, else (or if
    that fails) from the URL the lock records; the lock's sha256 is checked either way."""
    from .fetch import FetchError, fetch
    from .mirror import MirrorError, find, mirror_index

    index = mirror_index()
    if index is not None:
        try:
            url = find(index, wheel["dist"], wheel["name"])
            if url is None:
                raise MirrorError(f"{index} does not list {wheel['name']}")
            fetch(url, sha, wheel["size"], dest, what=what, on_bytes=on_bytes)
            return
        except (MirrorError, FetchError) as exc:
            from .log import logger

            logger().warning("%s: not from the mirror (%s); trying %s", what, exc, wheel["url"])
    fetch(wheel["url"], sha, wheel["size"], dest, what=what, on_bytes=on_bytes)


def _copy_bundled(plan: dict[str, Any], relpath: str, sha: str, dest: Path, what: str,
                  on_bytes: Callable[[int], None] | None = None) -> None:
    """Copy a bundled wheel out of the archive (or the model folder), checking its sha256."""
    from .fetch import FetchError

    digest = hashlib.sha256()
    with contextlib.ExitStack() as stack:
        if plan["archive"]:
            zf = stack.enter_context(zipfile.ZipFile(plan["archive"]))
            src = stack.enter_context(zf.open(f"model/{relpath}"))
        else:
            src = stack.enter_context((Path(plan["model"]) / relpath).open("rb"))
        out = stack.enter_context(dest.open("xb"))
        for chunk in iter(lambda: src.read(1 << 20), b""):
            digest.update(chunk)
            out.write(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    if digest.hexdigest() != sha:
        raise FetchError(f"{what}: the bundled wheel {relpath} does not match its lock "
                         f"sha256 ({digest.hexdigest()}); the carton was tampered with")


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["plan"] and len(argv) in (4, 5):
            write_plan(argv[1], argv[2], argv[3], argv[4] if len(argv) == 5 else None)
        elif argv[:1] == ["derive"] and len(argv) == 3:
            derive(argv[1], argv[2])
        elif argv[:1] == ["install"] and len(argv) >= 4:
            install(argv[1], argv[2], argv[3:])
        else:
            print(json.dumps({"error": f"usage: {__doc__}"}), file=sys.stderr)
            return 2
    except CartonError as exc:
        # NoEnvironmentError, by name: importing select here would cost every command.
        kind = ("no-environment" if type(exc).__name__ == "NoEnvironmentError"
                else type(exc).__name__)
        print(json.dumps({"error": str(exc), "kind": kind}), file=sys.stderr)
        return EXIT_ERROR
    except (OSError, zipfile.BadZipFile, KeyError) as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "kind": "internal"}),
              file=sys.stderr)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
