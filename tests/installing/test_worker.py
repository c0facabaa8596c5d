"""The worker's installs: a first run's big wheels shared with a second process."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from carton_hook.installing import splitunpack, worker

from ..conftest import run_hook
from ..factory import make_wheel
from ..indexserver import PackageIndex

MB = 1_000_000


def plan_of(sizes: dict[str, int]) -> dict[str, object]:
    return {"wheels": {sha: {"size": size} for sha, size in sizes.items()}}


@pytest.mark.skipif((os.cpu_count() or 1) < 2 or os.name != "posix",
                    reason="the split needs a second core; wheels stream on POSIX")
def test_a_second_process_takes_half_of_what_no_helper_unpacks() -> None:
    plan = plan_of({"a": 7 * MB, "b": 5 * MB, "c": 4 * MB, "d": 1 * MB})
    theirs = worker._second_share(plan, ["d", "c", "b", "a"])
    assert theirs == ["c", "b"]  # 9 MB beside 8 MB, in the order they are needed
    assert worker._second_share(plan, ["a"]) == []  # nothing to share
    small = plan_of({"a": 5 * MB, "b": 5 * MB})
    assert worker._second_share(small, ["a", "b"]) == []  # not worth a process
    # Wheels unpacked as they download have a helper process each: no second worker
    # for them (numpy + pandas), one for the small wheels beside them (torch's).
    streaming = plan_of({"a": 30 * MB, "b": 20 * MB, "c": 12 * MB, "d": 1 * MB})
    assert worker._second_share(streaming, ["d", "c", "b", "a"]) == []
    beside = plan_of({"t": 190 * MB, "s": 6 * MB, "n": 3 * MB})
    assert worker._second_share(beside, ["t", "s", "n"]) == ["s", "n"]


# Logs each worker command the run starts.
LOG_WORKERS = textwrap.dedent("""
    import sys
    argv = sys.orig_argv
    if "carton_hook.installing.worker" in argv:
        with open({log!r}, "a") as f:
            f.write(argv[argv.index("carton_hook.installing.worker") + 1] + "\\n")
""")


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the split needs a second core")
def test_a_first_run_shares_big_wheels_with_a_second_process(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    names = wheels_of(tmp_path, pypi, 4, 5 * MB)
    workers = run_logging_workers(tmp_path, pypi, build_carton, hermetic_env, names)
    # The plan's worker installed some, a second worker the others (and split no further).
    assert sorted(workers) == ["install", "plan"]


@pytest.mark.skipif((os.cpu_count() or 1) < 2 or os.name != "posix",
                    reason="wheels stream with a second core, on POSIX")
def test_wheels_unpacked_as_they_download_need_no_second_process(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    names = wheels_of(tmp_path, pypi, 2, 9 * MB)
    workers = run_logging_workers(tmp_path, pypi, build_carton, hermetic_env, names)
    assert workers == ["plan"]  # each had its unpacking helper


def wheels_of(tmp_path: Path, pypi: PackageIndex, count: int, size: int) -> list[str]:
    """`count` wheels big1, big2, ... on the index, each a random blob of `size` bytes."""
    names = [f"big{i}" for i in range(1, count + 1)]
    for name in names:
        wheel = pypi.add(make_wheel(tmp_path / "w", name, "1.0", {
            f"{name}/__init__.py": "NAME = __name__\n", f"{name}/blob.bin": os.urandom(size)}))
        assert splitunpack.streams(wheel.stat().st_size) == (size >= 8 * MB)
    return names


def run_logging_workers(tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
                        env: dict[str, str], names: list[str], also: str = "") -> list[str]:
    """Run, cold, a model that imports the wheels `names` and prints their NAME, with
    `also` in a sitecustomize; check that it did, each wheel downloaded once, and return
    the commands of the worker processes the run started. The plan's worker is forked
    from the model's process where it can be (loading/forkedworker.py): no interpreter
    starts for it then, and the trace tells it."""
    carton = build_carton("".join(f"{name}\n" for name in names), {
        "model.py": f"import {', '.join(names)}\ndef main():\n"
                    f"    print({', '.join(name + '.NAME' for name in names)})\n"})
    site = tmp_path / "site"
    site.mkdir()
    log = tmp_path / "workers.log"
    (site / "sitecustomize.py").write_text(LOG_WORKERS.format(log=str(log)) + also)
    pypi.reset_counts()
    trace = tmp_path / "trace.txt"
    proc = run_hook({**env, "PYTHONPATH": str(site), "CARTON_TRACE": str(trace)}, carton)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, " ".join(names) + "\n", "")
    assert sorted(r for r in pypi.requests if "/files/" in r) == [
        f"/files/{n}-1.0-py3-none-any.whl" for n in names]
    started = log.read_text().splitlines() if log.exists() else []
    steps = [line.split(" ", 3)[3] for line in trace.read_text().splitlines()]
    forked = "plan" not in started and "worker: imported" in steps
    return started + ["plan"] * forked


# The second worker dies at once, as if killed.
KILL_SECOND = textwrap.dedent("""
    import os, sys
    argv = sys.orig_argv
    worker = "carton_hook.installing.worker"
    if worker in argv and argv[argv.index(worker) + 1] == "install":
        os._exit(9)
""")


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="the split needs a second core")
def test_what_the_second_worker_did_not_install_the_first_installs(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    names = wheels_of(tmp_path, pypi, 4, 5 * MB)
    workers = run_logging_workers(tmp_path, pypi, build_carton, hermetic_env, names,
                                  also=KILL_SECOND)
    assert sorted(workers) == ["install", "plan"]  # it was started, and died


def big_wheel(tmp_path: Path, pypi: PackageIndex) -> Path:
    """A wheel of 9 MB (40 modules, then a random blob), downloaded as it is unpacked."""
    files: dict[str, str | bytes] = {"big1/__init__.py": "NAME = __name__\n"}
    files.update({f"big1/m{i}.py": f"X = {i}\n" for i in range(40)})
    files["big1/z_blob.bin"] = os.urandom(9 * MB)  # last in the archive, in any order
    wheel = pypi.add(make_wheel(tmp_path / "w", "big1", "1.0", files))
    assert wheel.stat().st_size >= splitunpack.STREAM_MIN_BYTES
    return wheel


def helpers_of(home: Path) -> list[int]:
    """The unpacking helpers still running for the cache in `home`."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if b"splitunpack" in cmdline and f"CARTON_HOME={home}".encode() in environ:
            pids.append(int(proc.name))
    return pids


streaming = pytest.mark.skipif(not splitunpack.streams(splitunpack.STREAM_MIN_BYTES),
                               reason="a wheel is unpacked as it downloads beside a "
                                      "second core, on POSIX")


@streaming
def test_a_big_wheel_is_unpacked_while_it_downloads(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    big_wheel(tmp_path, pypi)
    carton = build_carton("big1\n", {
        "model.py": "import big1, big1.m39\ndef main():\n    print(big1.NAME, big1.m39.X)\n"})
    # About 3 s: a network, not the loopback. A helper that takes its time to start (a
    # loaded machine) is 4 MB behind, staging big members only, after 1.3 s, not 0.7 s.
    pypi.bandwidth = 3 * MB
    trace = tmp_path / "trace"
    proc = run_hook({**hermetic_env, "CARTON_TRACE": str(trace)}, carton)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "big1 39\n", "")
    said = [line.split(": ", 1)[1] for line in trace.read_text().splitlines()
            if "staged as it arrived" in line]
    # Every plain member was staged before the download ended, and linked into the tree.
    assert said == ["42 members staged as it arrived, 42 linked"]
    verify = run_hook(hermetic_env, "verify", "--cache", carton)
    assert verify.returncode == 0, verify.stdout + verify.stderr


@streaming
def test_a_download_that_fails_ends_the_helper_unpacking_it(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """The served file is not the locked one (its sha256 is known only at its end): the
    import fails saying so, and the helper that staged its members is ended then, while
    the worker goes on with another wheel (held here), not when the worker ends."""
    import subprocess
    import sys
    import threading
    import time

    wheel = big_wheel(tmp_path, pypi)
    other = pypi.add(make_wheel(tmp_path / "w", "other", "1.0", {"other/__init__.py": ""}))
    carton = build_carton("big1\nother\n", {"model.py": textwrap.dedent("""
        def main():
            try:
                import big1
            except ImportError as exc:
                print("not the locked one" in str(exc), flush=True)
            import other
            print("other", flush=True)
        """)})
    served = pypi.files_dir / wheel.name
    data = bytearray(served.read_bytes())
    data[len(data) // 2] ^= 0xFF  # inside the blob: the archive still reads
    served.write_bytes(bytes(data))
    pypi.bandwidth = 20 * MB
    pypi.held[other.name] = threading.Event()
    home = Path(hermetic_env["CARTON_HOME"])
    with subprocess.Popen([sys.executable, "-m", "carton_hook", str(carton)],
                          env=hermetic_env, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline() == "True\n"
            deadline = time.monotonic() + 10
            while helpers_of(home) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert helpers_of(home) == []
        finally:
            pypi.held[other.name].set()
        assert proc.stdout.read() == "other\n"
    assert proc.returncode == 0


# Run in a fresh interpreter: a thread installs a bundled wheel that is not of the plain
# form (`_install_one`, as each of the worker's download threads does) while the main
# thread imports installer as another such thread would (`unpack.import_installer`).
# installer's package module is made slow to run, and the main thread starts its imports
# just as the thread starts running it: the overlap a loaded machine gives.
OVERLAPPING_IMPORTS = textwrap.dedent("""
    import json, sys, threading, time
    from importlib.machinery import PathFinder
    from pathlib import Path

    started = threading.Event()

    class SlowInstaller:
        @staticmethod
        def find_spec(name, path=None, target=None):
            if name != "installer":
                return None
            spec = PathFinder.find_spec(name, path)
            run = spec.loader.exec_module

            def exec_module(module):
                started.set()
                time.sleep(0.1)
                run(module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, SlowInstaller)
    from carton_hook.installing import worker

    plan, root, sha = json.loads(sys.argv[1])
    failed = []

    def install():
        try:
            worker._install_one(plan, Path(root), sha, sys.executable)
        except Exception as exc:
            failed.append(repr(exc))

    thread = threading.Thread(target=install)
    thread.start()
    if not started.wait(30):
        sys.exit("the thread never imported installer")
    from carton_hook.installing import unpack
    unpack.import_installer()
    thread.join()
    print(failed or "installed")
""")


def test_installer_imports_overlapping_in_two_threads_install(tmp_path: Path) -> None:
    # A .data folder: installer installs it (plainwheel.py).
    wheel = make_wheel(tmp_path, "demo", "1.0", {"demo/__init__.py": "",
                                                 "demo-1.0.data/purelib/extra.py": ""})
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    plan = {"archive": None, "model": str(tmp_path), "name": "m", "version": "1",
            "wheels": {sha: {"name": wheel.name, "dist": "demo", "version": "1.0",
                             "size": wheel.stat().st_size, "url": None,
                             "bundled": wheel.name}}}
    root = tmp_path / "packages"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTON_")}
    proc = subprocess.run([sys.executable, "-c", OVERLAPPING_IMPORTS,
                           json.dumps([plan, str(root), sha])],
                          capture_output=True, text=True, env=env, check=False, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "installed\n", "")
    assert (root / sha / "demo" / "__init__.py").is_file()
    assert (root / sha / "extra.py").is_file()


@pytest.mark.skipif(sys.platform in ("darwin", "win32"), reason="proxies from system settings")
@pytest.mark.parametrize(("setting", "urllib3"), [
    (None, False), ("HTTPS_PROXY=http://proxy.internal:3128", True),
    ("no_proxy=*", True), ("CARTON_INDEX_URL=https://pypi.internal.example/simple/", True),
])
def test_a_first_runs_worker_imports_urllib3_only_where_a_proxy_or_mirror_may_need_it(
        setting: str | None, urllib3: bool) -> None:
    """Where no proxy may apply and no mirror is set, what downloading needs is the
    standard library's HTTP (network/direct.py): `import urllib3` cost ~12 ms more of the
    worker's core before its first download."""
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and k != "CARTON_INDEX_URL"}
    if setting:
        name, _, value = setting.partition("=")
        env[name] = value
    code = ("import sys; from carton_hook.installing import worker; "
            "worker._import_for_downloading(); print('urllib3' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == str(urllib3)


def test_a_first_runs_worker_imports_only_what_downloading_needs_before_its_downloads() -> None:
    """Before the first download, the worker's core is the first run's critical path:
    typing, zipfile, logging (through concurrent.futures) are imported later, by
    unpacking (installer imports the first two), or never (docs/performance.md)."""
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and k != "CARTON_INDEX_URL"}
    later = ("typing", "zipfile", "logging", "concurrent.futures")
    code = ("import sys; from carton_hook.installing import worker; "
            f"worker._import_for_downloading(); print([m for m in {later!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-I", "-c", code], env=env, capture_output=True,
                         text=True, check=True, cwd=os.path.dirname(os.path.dirname(
                             os.path.dirname(os.path.abspath(__file__))))).stdout
    assert out.strip() == "[]"
