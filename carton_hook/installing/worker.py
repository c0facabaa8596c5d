"""The runtime's worker: a short-lived subprocess that does every cold-path job.

    python -m carton_hook.installing.worker plan MODEL PLANFILE IDENTITY [INTERPRETER]
    python -m carton_hook.installing.worker install PLANFILE INTERPRETER SHA256 [SHA256 ...]
    python -m carton_hook.installing.worker derive MODEL DEST

Selection needs `packaging`, fetching `urllib3` (where a proxy may apply or a mirror is
set; the standard library otherwise), locking `filelock`, unpacking `installer`. The
model's process must never import them under their public names (a model may lock other
versions of them), so they are imported here, in another process.
A failure prints one JSON line `{"error": ...}` on stderr and exits 3.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from carton_hook.cache.layout import carton_home, packages_dir
from carton_hook.errors import CartonError
from carton_hook.installing.turns import Turns
from carton_hook.installing.words import (
    DOWNLOADED,
    INSTALLED,
    PLAN_LOCK_FD,
    PLAN_WRITTEN,
    PREFETCH_FAILED,
    PROGRESS_FD,
    READY,
)
from carton_hook.planning.planfile import read_plan, write_plan_file
from carton_hook.trace import mark

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess

    from carton_hook.installing import splitunpack
    from carton_hook.installing.progress import Progress
    from carton_hook.planning.planfile import PlanData, WheelPlan

# Each command imports what it needs when it runs: the plan command, on every cold
# start, has no use for urllib3, installer or filelock (tens of milliseconds).

# Downloads wait on the network, so every wheel of a first run starts at once; the
# CPU work (checks, unpacking) takes turns (turns.py); modules are compiled when imported.
WORKERS = 8
EXIT_ERROR = 3
# The process that started this one (the model's, for a plan worker), taken at the start:
# once it has ended, `os.getppid()` names whichever process adopted this one.
STARTED_BY = os.getppid()


def write_plan(model_arg: str, plan_file: str, identity: str,
               prefetch_for: str | None = None) -> None:
    """Open the model (extracting a .carton), select its section, write the plan; or,
    where the model's process says it wrote the plan, read that one."""
    mark("worker: imported")
    imported: set[str] | None = None  # what the model's source imports, if told
    extracting = os.environ.get("CARTON_AFTER_MODEL_OPENS") == "1"
    if extracting and os.environ.get("CARTON_MODEL_SELECTS") == "1":
        # The model's process extracts the .carton and selects its section (loading/
        # selection.py) while this one imports what downloading needs: two cores.
        _import_for_downloading()
        mark("worker: imported what downloading needs")
        _import_for_unpacking_meanwhile()
        said, _, told = _read_line(sys.stdin.fileno()).partition(" ")
        plan = (read_plan(plan_file, identity, for_installing=True)
                if said == PLAN_WRITTEN else None)
        # The names the model's source imports, as the model's process read them.
        imported = set(json.loads(told)) if plan is not None and told else None
        if plan is not None:
            # Neither the model nor its plan is made again here, even if the extracted
            # folder was removed meanwhile (by hand: the model's process holds it from
            # its extraction on, so `cache clear` leaves it): that process, which goes
            # on at once when nothing is missing (`workerclient.ALL_CACHED`), finds it
            # gone and extracts it itself (api.load); extracting it here too raced
            # with it.
            mark("worker: the model's process wrote the plan")
            if imported is not None:
                mark(f"worker: told what the model's source imports ({len(imported)})")
        else:  # it could not select: this one does, as for a model folder
            from carton_hook.planning.models import open_model
            from carton_hook.planning.select import make_plan

            model = open_model(Path(model_arg), Path(carton_home()))
            plan = make_plan(model)
            plan["identity"] = identity
            write_plan_file(plan_file, plan)
            mark("worker: plan written")
    else:
        # The model's process may be extracting the archive now (plan.get_plan): the
        # section is selected from the archive meanwhile, and the plan written once the
        # folder is published (by that process, or, if it failed or ended, by this one:
        # no plan is ever written for a model whose archive was not checked whole).
        from carton_hook.planning.models import open_model
        from carton_hook.planning.select import make_plan

        folder = os.path.isfile(os.path.join(model_arg, "pyproject.toml"))
        check = start_lock_check(model_arg) if folder else None  # meanwhile, elsewhere
        model = open_model(Path(model_arg), Path(carton_home()), extract=not extracting)
        plan = make_plan(model)
        mark("worker: section selected")
        if extracting:
            _read_line(sys.stdin.fileno())
            mark("worker: the model's process opened the model")
            model = open_model(Path(model_arg), Path(carton_home()))
        plan["identity"] = identity
        if check is not None:
            plan["watch"] = lock_watch(check, model_arg)
        write_plan_file(plan_file, plan)
        mark("worker: plan written")
    # The model's process makes its prefix (api.load), on its own core while these
    # install: here it took the installing threads' interpreter lock for 25-100 ms.
    if prefetch_for:
        prefetch(plan, plan_file, plan["model"], plan["entrypoint"], prefetch_for,
                 names=imported)


def start_lock_check(folder: str) -> subprocess.Popen[str] | None:
    """Ask the build half whether a model folder's lock is current, and which files that
    depends on (`lock --check`), in a subprocess: this runtime never imports it."""
    import subprocess

    try:
        return subprocess.Popen(
            [sys.executable, "-m", "carton_backend", "lock", "--check", folder],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
    except OSError:
        return None


def lock_watch(check: subprocess.Popen[str], folder: str) -> list[list[str]]:
    """The answer of `start_lock_check`: the requirements files with their signatures,
    for the plan to watch, and, once per change of them, a warning if the lock is stale
    (the run goes on with it). Where carton_backend is not installed, nothing is
    watched."""
    from carton_hook.log import logger
    from carton_hook.planning.planfile import file_signature

    out, _ = check.communicate()
    lines = out.splitlines()
    if check.returncode not in (0, 1) or not lines or not (
            lines[0] == "current" or lines[0].startswith("stale: ")):
        return []  # no carton_backend here, or it could not tell (its error is for lock)
    if lines[0] != "current":
        logger().warning("%s: the lock is stale (%s); this run uses it as it is: run "
                         "python -m carton_backend lock %s to bring it up to date",
                         Path(folder, ".carton", "carton.lock"),
                         lines[0].removeprefix("stale: "), folder)
    return [[path, file_signature(path)] for path in lines[1:]]


def prefetch(plan: PlanData, plan_file: str, model_dir: str, entrypoint: str,
             interpreter: str, meanwhile: Callable[[], None] = lambda: None,
             names: set[str] | None = None) -> None:
    """Install the wheels the model's source imports (and what they depend on) now, in
    this run, together: the first run then starts no worker per first import. What could
    not be installed is printed (one JSON line on stdout), so that the import that needs
    it reports why at once instead of trying the same download again. `meanwhile` runs
    while they download. `names`: what the model's source imports, where the model's
    process has read it already (predict.py)."""
    from carton_hook.planning.predict import imported_names, predicted_wheels, wheels_to_prefetch

    if names is None:
        names = imported_names(model_dir, entrypoint)
    shas = wheels_to_prefetch(plan, names)

    def then() -> None:
        meanwhile()
        # The model's process goes on now, while these install: its finder waits for
        # those it imports, each until its entry is complete (workerclient.Background).
        mark("worker: ready")  # before the model's process hears it: one order
        _say(json.dumps({READY: shas}))

    failed = _install_each(plan, shas, interpreter, then, share_via=plan_file,
                           on_installed=lambda sha: _say(json.dumps({INSTALLED: sha})),
                           on_downloaded=lambda sha, path: _say(
                               json.dumps({DOWNLOADED: [sha, path]})))
    mark("worker: prefetch installed")
    if failed:
        _say(json.dumps({PREFETCH_FAILED: {sha: str(exc) for sha, exc in failed.items()}}))
    # The model's process imports these next: this process, done installing, compiles
    # them meanwhile on the other core, once it has let go of what others wait on. (A
    # process of its own did, whose interpreter's start delayed it: docs/performance.md.)
    # Imported only now (with subprocess): nothing before the downloads waits for it.
    from carton_hook.installing.compileahead import ahead, worth_ahead

    root = packages_dir()
    followed = sorted(n for n in names if predicted_wheels(plan, {n}))
    roots = [os.path.join(root, sha, *filter(None, [sub]))
             for sha in shas if sha not in failed for sub in plan["wheels"][sha]["roots"]]
    if worth_ahead(followed, roots):
        _let_go()
        mark("worker: compiling ahead")
        ahead(followed, roots, os.path.join(root, ".tmp"), owner=STARTED_BY)


def _let_go() -> None:
    """Let go of all that the model's process and the processes started with it wait on,
    for work of this process's own (compiling ahead): its pipes to the model's process
    (whose threads then read their end), the progress descriptor, and its copy of the
    plan's lock (PLAN_LOCK_FD), which processes of the same model started together wait
    for. Each descriptor is pointed at the null device rather than closed: an object
    that still holds its number never closes a file opened later under it."""
    with _SAYING, contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    held = [0, 1, 2]
    for name in (PLAN_LOCK_FD, PROGRESS_FD):
        value = os.environ.get(name, "")
        if value.isdigit():
            held.append(int(value))
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for fd in held:
            with contextlib.suppress(OSError):
                os.dup2(null, fd)
    finally:
        os.close(null)


_SAYING = threading.Lock()


def _read_line(fd: int) -> str:
    """Read a line from `fd` a byte at a time: what follows it stays in the pipe, for
    the progress line to read (progress.Progress.listen)."""
    line = b""
    while (byte := os.read(fd, 1)) not in (b"\n", b""):
        line += byte
    return line.decode(errors="replace")


def _import_for_downloading() -> None:
    """Import what downloading needs: on a first run ahead of the plan, and otherwise
    before the download threads start (`_install_each`), so that they do not import
    it all at once (`_import_for_unpacking` says why): the standard library's HTTP where
    no proxy may apply (network/direct.py), urllib3 where one may or a mirror is set."""
    from carton_hook.installing.mirror import mirror_index
    from carton_hook.network import http

    if http.proxies_may_apply() or mirror_index():
        import urllib3  # noqa: F401
    if http.proxies_may_apply():
        import urllib.request  # noqa: F401 - http reads the proxy rules with it
    else:
        import carton_hook.network.direct

    import carton_hook.cache.entries
    import carton_hook.installing.fetch
    import carton_hook.installing.progress
    import carton_hook.planning.predict  # noqa: F401


# Held while unpacking's modules are imported (`_import_for_unpacking`).
_UNPACKING_IMPORTS = threading.Lock()


def _import_for_unpacking() -> None:
    """Import what unpacking needs (carton's checks and writing of a wheel; installer
    only for a wheel that is not of the plain form, `unpack.import_installer`), in one
    thread at a time: ahead, while the plan is awaited (`_import_for_unpacking_meanwhile`)
    or the first downloads run, and by a thread whose download ended first. Modules that
    import each other, imported by two threads at once, can wait for each other (CPython's
    import locks are per module), and Python then hands one of them a module half made
    ("cannot import name 'WheelDestination' from partially initialized module"): its
    wheel failed (test_worker.py). What downloading needs is imported before the threads
    start, in one thread (`_install_each`)."""
    with _UNPACKING_IMPORTS:
        import carton_hook.installing.unpack  # noqa: F401


def _import_for_unpacking_meanwhile() -> None:
    """`_import_for_unpacking` in a thread of its own, while this one waits for the plan
    and then starts the downloads; whoever needs those modules calls it again, and waits
    for this thread (its lock). A failure here is left to that call to report."""
    def run() -> None:
        with contextlib.suppress(Exception):
            _import_for_unpacking()
        mark("worker: imported what unpacking needs, meanwhile")

    threading.Thread(target=run, name="carton-imports", daemon=True).start()


def _say(line: str) -> None:
    """A line for the model's process, which may have ended by now; whole, from any
    thread."""
    with _SAYING, contextlib.suppress(OSError):
        print(line, flush=True)


def derive(model_arg: str, dest: str) -> None:
    """Copy MODEL's model folder, bundled wheels included, to `dest`."""
    from carton_hook.planning.models import copy_model

    copy_model(Path(model_arg), Path(dest), Path(carton_home()))


def install(plan_file: str, interpreter: str, shas: list[str]) -> None:
    """Make sure each wheel is in the cache, several at a time."""
    plan = read_plan(plan_file, for_installing=True)
    if plan is None:
        raise CartonError(f"the plan {plan_file} is gone or unreadable; run the carton again")
    _install_all(plan, shas, interpreter)


def _install_all(plan: PlanData, shas: list[str], interpreter: str) -> None:
    failed = _install_each(plan, shas, interpreter)
    if failed:
        raise next(iter(failed.values()))


def _install_each(plan: PlanData, shas: list[str], interpreter: str,
                  meanwhile: Callable[[], None] = lambda: None,
                  share_via: str | None = None,
                  on_installed: Callable[[str], None] | None = None,
                  on_downloaded: Callable[[str, str], None] | None = None,
                  ) -> dict[str, Exception]:
    """Install the wheels `shas`, several at a time, running `meanwhile` in this thread
    after they started, and with `share_via` (the plan's file), part of them in a second
    worker process (a first run's batch); what failed, in `shas` order. `on_installed` is
    called with each sha256 this process finds or makes complete, as it does, and
    `on_downloaded` with each sha256 and the file it was downloaded to, checked, before
    it is unpacked (and removed)."""
    from carton_hook.cache.entries import is_complete
    from carton_hook.installing.progress import from_env, packages_of

    root = Path(packages_dir())
    missing = [sha for sha in shas if not is_complete(root / sha, sha)]
    # Made even when nothing is missing: a model's process that goes on while this one
    # installs asks it to be quiet, and waits for its reply (progress.py).
    progress = from_env(answer=_say)
    if progress is not None and missing:
        size = sum(plan["wheels"][sha]["size"] for sha in missing)
        progress.start(f"{plan['name']} {plan['version']}: installing "
                       f"{packages_of(len(missing))} ({size / 1e6:.1f} MB) into {root}",
                       len(missing), size)
    theirs = _second_share(plan, missing) if share_via else []
    helper = _start_helper(share_via, interpreter, theirs) if share_via and theirs else None
    if helper is None:
        theirs = []  # no second process (none wanted, or it could not start): all here
    if any(plan["wheels"][sha]["url"] for sha in missing):
        # Here, not by the threads, each at once (a no-op where done ahead).
        _import_for_downloading()
    failed: dict[str, Exception] = {}
    # Downloaded together, unpacked one at a time in `shas` order (turns.py).
    turns = Turns(shas)
    try:
        # Progress counts what is installed now, not what the cache already had.
        raised = _in_threads(
            [sha for sha in shas if sha not in theirs],
            lambda sha: _install_one(plan, root, sha, interpreter,
                                     progress if sha in missing else None, turns,
                                     on_installed, on_downloaded),
            lambda: _then_unpacking_imports(meanwhile, bool(missing)))
        for sha, exc in raised.items():
            if not isinstance(exc, _install_errors()):
                raise exc
            failed[sha] = exc
        if helper is not None:
            _join_helper(helper)
            for sha in theirs:  # what the helper did not install (it failed, or died)
                try:
                    _install_one(plan, root, sha, interpreter)
                except _install_errors() as exc:
                    failed[sha] = exc
                if progress is not None:
                    progress.advance(plan["wheels"][sha]["size"])
                    progress.finished_one(installed=_described(plan["wheels"][sha]))
    finally:
        if progress is not None:
            progress.stop()
    return {sha: failed[sha] for sha in shas if sha in failed}


def _in_threads(shas: list[str], job: Callable[[str], None],
                meanwhile: Callable[[], None]) -> dict[str, BaseException]:
    """Run `job` on each of `shas`, up to WORKERS at once, each thread taking the next in
    `shas` order, and `meanwhile` in this thread once they started; what each raised, in
    `shas` order. (A thread pool of its own: concurrent.futures imports logging, 4 ms of
    a first run's worker before its first download.)"""
    left = list(reversed(shas))
    raised: dict[str, BaseException] = {}
    taking = threading.Lock()

    def run() -> None:
        while True:
            with taking:
                if not left:
                    return
                sha = left.pop()
            try:
                job(sha)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                raised[sha] = exc

    threads = [threading.Thread(target=run, name=f"carton-install-{i}", daemon=True)
               for i in range(min(WORKERS, len(shas)))]
    for thread in threads:
        thread.start()
    try:
        meanwhile()
    finally:  # what they were doing ends, or fails, before anything goes on
        for thread in threads:
            thread.join()
    return {sha: raised[sha] for sha in shas if sha in raised}


def _then_unpacking_imports(meanwhile: Callable[[], None], missing: bool) -> None:
    meanwhile()
    if missing:  # while the first bytes arrive, not by the first thread to unpack
        _import_for_unpacking()
        mark("worker: imported what unpacking needs")


def _install_errors() -> tuple[type[Exception], ...]:
    """What installing one wheel raises that fails that wheel alone (reported for it,
    the others go on); anything else is a bug, and ends the worker."""
    return CartonError, OSError, _bad_zip(), KeyError


def _bad_zip() -> type[Exception]:
    """zipfile's error, for `except` clauses (evaluated only when something was raised):
    imported by then, by unpacking, and not before a first run's downloads."""
    import zipfile

    return zipfile.BadZipFile


# A second worker process installs part of a first run's wheels when those that no
# unpacking helper shares are big enough to be worth its start (~100 ms of a core):
# unpacking is mostly Python, so threads of one process share one core, and a second
# process uses the second. A wheel that is unpacked as it downloads has a helper of its
# own (`splitunpack.streams`): numpy + pandas went 0.96x faster without the second
# process, torch (with 10 MB of small wheels beside it) 1.05x slower (docs/performance.md).
SHARE_MIN_BYTES = 8_000_000


def _second_share(plan: PlanData, missing: list[str]) -> list[str]:
    """The wheels of `missing` for a second process: about half of the bytes, biggest
    wheels spread over both; none on one core, or when the wheels that no helper
    unpacks beside this process are too few to share. In `missing`'s order, the order
    they are unpacked in (turns.py)."""
    if len(missing) < 2 or (os.cpu_count() or 1) < 2:
        return []
    from carton_hook.installing import splitunpack

    sizes = [int(plan["wheels"][sha]["size"]) for sha in missing]
    if sum(size for size in sizes if not splitunpack.streams(size)) < SHARE_MIN_BYTES:
        return []
    mine: list[str] = []
    theirs: list[str] = []
    loads = [0, 0]
    for sha in sorted(missing, key=lambda s: -int(plan["wheels"][s]["size"])):
        side = 0 if loads[0] <= loads[1] else 1
        (mine, theirs)[side].append(sha)
        loads[side] += int(plan["wheels"][sha]["size"])
    if loads[1] < SHARE_MIN_BYTES:
        return []
    return [sha for sha in missing if sha in theirs]


def _start_helper(plan_file: str, interpreter: str,
                  shas: list[str]) -> subprocess.Popen[str] | None:
    import subprocess

    # One progress line only; the plan's lock is not its to let go of (`_let_go`).
    env = {k: v for k, v in os.environ.items() if k not in (PROGRESS_FD, PLAN_LOCK_FD)}
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "carton_hook.installing.worker", "install", plan_file,
             interpreter, *shas],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
    except OSError:
        return None  # this process installs them all


def _join_helper(helper: subprocess.Popen[str]) -> None:
    """Wait for the helper; pass on what it said but its failure (the wheels it could
    not install are installed again here, and their failure reported from here)."""
    _, err = helper.communicate()
    lines = err.splitlines()
    if helper.returncode != 0 and lines and lines[-1].startswith('{"error"'):
        lines.pop()
    if lines:
        sys.stderr.write("\n".join(lines) + "\n")


def _described(wheel: WheelPlan) -> str:
    """A wheel as the log's verbose line names it."""
    return f"{wheel['dist']} {wheel['version']} ({int(wheel['size']) / 1e6:.1f} MB)"


def _install_one(plan: PlanData, root: Path, sha: str, interpreter: str,
                 progress: Progress | None = None, turns: Turns | None = None,
                 on_installed: Callable[[str], None] | None = None,
                 on_downloaded: Callable[[str, str], None] | None = None) -> None:
    from carton_hook.cache.entries import ensure

    wheel = plan["wheels"][sha]
    what = f"{wheel['dist']} {wheel['version']} ({wheel['name']})"
    on_bytes = progress.advance if progress is not None else None

    from carton_hook.installing import splitunpack

    def fill(work: Path, tree: Path) -> None:
        local = work / wheel["name"]
        # A big wheel is unpacked as it arrives, by a helper that then shares the rest.
        streaming = _start_streaming(local, work, int(wheel["size"]))
        try:
            _fill(work, tree, local, streaming)
        except BaseException:
            if streaming is not None:  # before its work folder is removed
                splitunpack.stop(streaming.proc)
            raise

    def _fill(work: Path, tree: Path, local: Path,
              streaming: splitunpack.Streaming | None) -> None:
        mark(f"{wheel['name']}: fetching")
        if wheel["url"]:
            _download(wheel["url"], wheel, sha, local, what, on_bytes)
        else:
            _copy_bundled(plan, str(wheel["bundled"]), sha, local, what, on_bytes)
        if on_downloaded is not None:
            on_downloaded(sha, str(local))
        if turns is not None:
            # Held until the entry is published: another thread that unpacks meanwhile
            # would keep this one waiting for the interpreter lock at each system call.
            held.enter_context(turns.turn(sha))
        mark(f"{wheel['name']}: unpacking")
        _import_for_unpacking()  # once downloaded
        from carton_hook.installing.unpack import install_wheel

        if progress is not None:
            progress.doing(unpacking)
        entry = root / sha
        destdir = work / "dest"
        install_wheel(local, wheel["name"], entry, destdir, interpreter,
                      between=None if turns is None else lambda: turns.hand_over(sha),
                      streaming=streaming)
        os.rename(destdir / os.path.relpath(entry, entry.anchor), tree)
        # Counted before the entry is published: a model that waits for it goes on
        # then, and what the progress says as it goes on must include this one.
        if progress is not None:
            progress.finished_one(unpacking, _described(wheel))
            counted.append(sha)

    unpacking = f"unpacking {wheel['dist']}"
    counted: list[str] = []
    with contextlib.ExitStack() as held:
        ensure(root, sha, fill)
        mark(f"{wheel['name']}: installed")
        if on_installed is not None:  # before its turn is let go of: the model comes first
            on_installed(sha)
    if progress is not None and not counted:  # another process installed it
        progress.finished_one(unpacking, _described(wheel))


def _start_streaming(local: Path, work: Path, size: int) -> splitunpack.Streaming | None:
    """A helper that unpacks the wheel downloaded to `local` as it arrives
    (`splitunpack.start_streaming`), if it is big enough to be worth one."""
    from carton_hook.installing import splitunpack

    if not splitunpack.streams(size):
        return None
    from carton_hook.errors import UnsafeMember
    from carton_hook.formats.members import Limits

    try:
        limit = Limits.from_env().allowed(size)
    except UnsafeMember:
        return None  # the wheel's check says so, after the download
    stage = work / "stage"
    stage.mkdir()
    return splitunpack.start_streaming(str(local), size, str(stage), limit)


def _download(url: str, wheel: WheelPlan, sha: str, dest: Path, what: str,
              on_bytes: Callable[[int], None] | None) -> None:
    """From the mirror (`CARTON_INDEX_URL`) if one is set and has the file, else (or if
    that fails) from the URL the lock records; the lock's sha256 is checked either way."""
    from carton_hook.errors import FetchError, MirrorError
    from carton_hook.installing.fetch import fetch
    from carton_hook.installing.mirror import find, mirror_index

    index = mirror_index()
    if index is not None:
        try:
            mirrored = find(index, wheel["dist"], wheel["name"])
            if mirrored is None:
                raise MirrorError(f"{index} does not list {wheel['name']}")
            fetch(mirrored, sha, wheel["size"], dest, what=what, on_bytes=on_bytes)
            return
        except (MirrorError, FetchError) as exc:
            from carton_hook.log import logger

            logger().warning("%s: not from the mirror (%s); trying %s", what, exc, url)
    fetch(url, sha, wheel["size"], dest, what=what, on_bytes=on_bytes)


def _copy_bundled(plan: PlanData, relpath: str, sha: str, dest: Path, what: str,
                  on_bytes: Callable[[int], None] | None = None) -> None:
    """Copy a bundled wheel out of the archive (or the model folder), checking its sha256."""
    import zipfile

    from carton_hook.errors import FetchError

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
        print(json.dumps({"error": str(exc), "kind": exc.kind}), file=sys.stderr)
        return EXIT_ERROR
    except (OSError, _bad_zip(), KeyError) as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}", "kind": "internal"}),
              file=sys.stderr)
        return EXIT_ERROR
    return 0


if __name__ == "__main__":
    import signal

    # Ctrl-C reaches the model's process and this one together. This one ends at once,
    # as a killed one does: what it was writing is in a temporary folder that nothing
    # trusts. Finishing its downloads and unpacking first could take minutes.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(main(sys.argv[1:]))
