"""`nox -s bench`: carton beside a plain venv, shiv, pex, pip and uv, in one run.

    python bench/bench.py [--out docs/performance.md] [--runs 20] [--cold-runs 8] [--only PARTS]

Builds every workload's contenders from the same wheels (downloaded once, then served
from a loopback index), times them alternating, and writes the markdown report.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import aside  # noqa: E402
import runtime  # noqa: E402
from contenders import PY, Builder  # noqa: E402
from report import Report  # noqa: E402
from timing import Command, Result, alternate, clean_env, run_once  # noqa: E402
from workloads import (  # noqa: E402
    MANY,
    NUMERIC,
    REQUESTS,
    SKLEARN,
    STARTUP,
    TORCH,
    Workload,
    download,
    pack_env,
    write_model,
)

PARTS = ("requests", "numeric", "laziness", "sklearn", "torch", "network", "crowd", "packing",
         "finder", "startup", "memory")
CROWD = 16
# The link of the network part: a fast connection to an index, not the loopback.
NETWORK_BYTES_PER_SECOND = 50_000_000

from tests.factory import make_wheel  # noqa: E402
from tests.indexserver import PackageIndex  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    # Defaults that keep the whole bench within 15 minutes on two cores.
    # Twenty: the warm targets are within 1% of the venv, and ten runs' medians moved by
    # 1-2% from one run of the bench to the next.
    parser.add_argument("--runs", type=int, default=20, help="warm runs per contender")
    parser.add_argument("--cold-runs", type=int, default=6, help="cold runs per contender")
    parser.add_argument("--work", type=Path, help="keep the work folder here")
    parser.add_argument("--only", default=",".join(PARTS),
                        help=f"comma-separated parts to run (default: all of {','.join(PARTS)})")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    if parts - set(PARTS):
        parser.error(f"unknown part(s): {', '.join(sorted(parts - set(PARTS)))}")
    # The torch wheel on disk is cp311.
    torch = bool(parts & {"torch", "network"}) and sys.version_info[:2] == (3, 11)
    work = args.work or Path(tempfile.mkdtemp(prefix="carton-bench-"))
    started = time.monotonic()
    wheelhouse = work / "wheelhouse"
    print(f"bench: downloading the workloads' wheels into {wheelhouse}", flush=True)
    download((REQUESTS, NUMERIC, MANY, SKLEARN, *((TORCH,) if torch else ())), wheelhouse, PY)
    # A --work folder keeps the index's port from run to run (the models are locked anew
    # each run: workloads.write_model).
    port_file = work / "index-port"
    try:
        index = PackageIndex(work / "index", json=False,
                             port=int(port_file.read_text()) if port_file.exists() else 0)
    except OSError:  # taken: another port
        index = PackageIndex(work / "index", json=False)
    port_file.write_text(str(index.port))
    for wheel in sorted(wheelhouse.glob("*.whl")):
        index.add(wheel)
    index.start()
    aside.start(work / "set-aside")
    free = shutil.disk_usage(work).free
    if free < aside.ROOM_NEEDED:
        print(f"bench: warning: {free / 1e9:.0f} GB free in {work}; what cold runs empty is "
              f"kept until the bench ends (~{aside.ROOM_NEEDED / 1e9:.0f} GB)", flush=True)
    report = Report(machine=machine(), runs=args.runs, cold_runs=args.cold_runs)
    report.part_seconds["wheels and index"] = time.monotonic() - started
    try:
        # Each part's wall time goes into the report: where the bench's 15 minutes go.
        def part(name: str, run: Callable[[], object]) -> None:
            began = time.monotonic()
            run()
            report.part_seconds[name] = time.monotonic() - began
            print(f"bench: {name} took {report.part_seconds[name]:.0f} s", flush=True)

        if parts & {"requests", "finder"}:
            part("requests", lambda: startup(report, REQUESTS, work, wheelhouse, index.url,
                                             args, args.cold_runs))
        # Cold runs of numpy + pandas take seconds each, six contenders over: fewer of them.
        if parts & {"numeric", "packing", "crowd"}:
            part("numeric", lambda: startup(report, NUMERIC, work, wheelhouse, index.url, args,
                                            max(3, args.cold_runs // 2)))
        if "laziness" in parts:
            part("laziness", lambda: laziness(report, work, wheelhouse, index.url, args))
        if "sklearn" in parts:
            part("sklearn", lambda: against_uv(report, SKLEARN, work, wheelhouse, index.url,
                                               args))
        if torch and "torch" in parts:
            part("torch", lambda: against_uv(report, TORCH, work, wheelhouse, index.url, args,
                                             warm_runs=3))
        if torch and "network" in parts:
            part("network", lambda: over_a_network(report, TORCH, work, wheelhouse, index,
                                                   args))
        if "crowd" in parts:
            part("crowd", lambda: crowd(report, work / NUMERIC.name, wheelhouse, index, args))
        if "packing" in parts:
            part("packing", lambda: packing(report, work / "numeric", index.url, args))
        if "finder" in parts:
            part("finder", lambda: finder(report, work / "requests"))
        if "startup" in parts:
            part("startup", lambda: startup_alone(report, work, wheelhouse, index.url, args))
        if "memory" in parts:
            part("memory", lambda: memory(report, work, index, args))
    finally:
        index.stop()
        freed = aside.empty()
        print(f"bench: deleted what cold runs had set aside ({freed / 1e9:.1f} GB freed)",
              flush=True)
    report.seconds = time.monotonic() - started
    args.out.write_text(report.markdown())
    print(f"bench: wrote {args.out} in {report.seconds / 60:.1f} min", flush=True)
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


def startup(report: Report, workload: Workload, work: Path, wheelhouse: Path, index_url: str,
            args: argparse.Namespace, cold_runs: int) -> None:
    print(f"bench: workload {workload.name}: building contenders", flush=True)
    b = Builder(workload, work / workload.name, wheelhouse, index_url)
    venv = b.venv()
    carton_warm, carton_cold, _ = b.carton()
    shiv_warm, shiv_cold = b.shiv()
    pexv_warm, pexv_cold = b.pex(venv=True)
    # pex's zip mode and pip's install-then-run cost minutes on the big workload and are
    # far behind: they run on the small one only, to keep the bench within 15 minutes.
    small = workload is REQUESTS
    pex_warm, pex_cold = b.pex(venv=False) if small else (None, None)
    print(f"bench: workload {workload.name}: timing", flush=True)
    warm = alternate([c for c in (venv, carton_warm, b.warm_floor(), b.carton_executable(),
                                  shiv_warm, pex_warm, pexv_warm) if c is not None], args.runs)
    # The second run right after a cold one: against the venv's warm run, in turn.
    warm += beside_venv(b, venv, max(3, cold_runs))
    # What installing before importing costs at least, every check kept (installfloor.py),
    # on one core and on two, where carton's first run is slower than its target: the
    # small workload.
    floors = [b.install_floor(), b.install_floor(ahead=True)] if small else []
    cold = alternate([carton_cold, shiv_cold, pexv_cold, b.uv_then_run(), b.venv_compiling(),
                      *floors], cold_runs, warmup=0)
    if small:  # far behind (7-16x the venv): a third of the samples tell that
        cold += alternate([c for c in (pex_cold, b.pip_then_run()) if c is not None],
                          max(2, cold_runs // 3), warmup=0)
    report.add_table(workload.name, f"Workload: {workload.title}", warm + cold, base="plain venv")


# Rounds of second runs at the least: their target is 1.01x, and with two or three runs
# each (what the cold runs of the big workloads get) one slow run moved the ratio by more
# than that (numpy + pandas: the venv's own run after a cold one 1.20x its warm run).
SECOND_RUNS = 5


def beside_venv(b: Builder, venv: Command, runs: int) -> list[Result]:
    """The second run after a cold one, alternating with the venv's warm run, each right
    after a cold run too: its target is a ratio to the venv runs made beside it, in the
    same state of the machine, not to those of another minute."""
    return alternate([b.venv_after_cold(venv), b.carton_second()], max(SECOND_RUNS, runs),
                     warmup=0)


def against_uv(report: Report, workload: Workload, work: Path, wheelhouse: Path,
               index_url: str, args: argparse.Namespace, warm_runs: int | None = None) -> None:
    """A big workload: carton's cold start against uv's install-then-run (the fastest
    installer), and its second run against the venv's warm one."""
    print(f"bench: workload {workload.name}", flush=True)
    b = Builder(workload, work / workload.name, wheelhouse, index_url)
    venv = b.venv()
    carton_warm, carton_cold, _ = b.carton()
    runs = max(2, args.cold_runs // 3)
    warm = alternate([venv, carton_warm], warm_runs or max(5, args.runs // 2))
    warm += beside_venv(b, venv, runs)
    cold = alternate([carton_cold, b.uv_then_run()], runs, warmup=0)
    report.add_table(workload.name, f"Workload: {workload.title}", warm + cold,
                     base="plain venv")


def over_a_network(report: Report, workload: Workload, work: Path, wheelhouse: Path,
                   index: PackageIndex, args: argparse.Namespace) -> None:
    """A big workload's cold start when its wheels come over a link of
    NETWORK_BYTES_PER_SECOND, against uv downloading them over the same link."""
    print(f"bench: workload {workload.name} over a network", flush=True)
    b = Builder(workload, work / workload.name, wheelhouse, index.url)
    _, carton_cold, _ = b.carton()
    uv = b.uv_then_run(from_index=True)
    index.bandwidth = NETWORK_BYTES_PER_SECOND
    try:
        cold = alternate([carton_cold, uv], max(2, args.cold_runs // 3), warmup=0)
    finally:
        index.bandwidth = None
    report.add_table("network", f"Workload: {workload.title}, cold, its wheels downloaded "
                                f"over a {NETWORK_BYTES_PER_SECOND / 1e6:.0f} MB/s link",
                     cold, base=uv.name)


def crowd(report: Report, numeric: Path, wheelhouse: Path, index: PackageIndex,
          args: argparse.Namespace) -> None:
    """CROWD processes of the numpy + pandas carton at once on an empty cache, against
    one cold start; and how often each wheel was downloaded."""
    print(f"bench: {CROWD} processes at once", flush=True)
    b = Builder(NUMERIC, numeric, wheelhouse, index.url)
    _, one, _ = b.carton()
    many = b.carton_crowd(CROWD)
    floor = b.carton_crowd(CROWD, warm=True)  # the same imports, nothing to install
    run_once(floor)  # untimed: fills its cache, if the numeric workload did not
    results = [Result(one.name), Result(many.name), Result(floor.name)]
    downloads: list[int] = []
    for _ in range(max(2, args.cold_runs // 3)):
        for command, result in zip((one, many, floor), results, strict=True):
            index.reset_counts()
            seconds, rss = run_once(command)
            result.seconds.append(seconds)
            result.peak_rss_kb.append(rss)
            if command is many:
                files = [r for r in index.requests if "/files/" in r]
                downloads.append(max(files.count(f) for f in set(files)) if files else 0)
    report.add_table("crowd", f"Workload: {CROWD} processes of numpy + pandas at once, cold",
                     results, base=one.name)
    report.crowd_downloads = max(downloads)


def laziness(report: Report, work: Path, wheelhouse: Path, index_url: str,
             args: argparse.Namespace) -> None:
    print("bench: workload laziness", flush=True)
    b = Builder(MANY, work / MANY.name, wheelhouse, index_url)
    venv = b.venv()
    carton_warm, carton_cold, folder = b.carton()
    shiv_warm, shiv_cold = b.shiv()
    # The same model locking six alone: what the 34 unused packages add to a cold start.
    alone = Workload("six-alone", "six alone", ("six",), MANY.body, MANY.expect)
    _, alone_cold, _ = Builder(alone, work / alone.name, wheelhouse, index_url).carton()
    alone_cold.name = "carton cold, six alone"
    locked = json.loads((folder / ".carton" / "carton.lock").read_text())
    count = len(locked["environments"][0]["packages"])
    warm = alternate([venv, carton_warm, shiv_warm], args.runs)
    # Half a second a run, and the target compares two cartons within 10%: twice the
    # samples of the other workloads' cold runs.
    cold = alternate([carton_cold, alone_cold, shiv_cold], 2 * args.cold_runs, warmup=0)
    report.add_table(MANY.name, f"Workload: {MANY.title} ({count} locked)", warm + cold,
                     base="plain venv")


def startup_alone(report: Report, work: Path, wheelhouse: Path, index_url: str,
                  args: argparse.Namespace) -> None:
    """What carton adds to every warm start, apart from the model's imports: a model that
    imports nothing, many runs (each takes tens of milliseconds, and the difference is a
    few), so that the fixed cost stands out of the noise the big workloads' warm runs
    have."""
    print("bench: start-up alone", flush=True)
    b = Builder(STARTUP, work / STARTUP.name, wheelhouse, index_url)
    venv = b.venv()
    carton_warm, _, _ = b.carton()
    warm = alternate([venv, carton_warm, b.warm_floor(), b.carton_executable()], 5 * args.runs)
    report.add_table(STARTUP.name, f"Workload: {STARTUP.title}", warm, base="plain venv")


def packing(report: Report, numeric: Path, index_url: str, args: argparse.Namespace) -> None:
    print("bench: packing", flush=True)
    folder = numeric / "model"
    env = pack_env(index_url, numeric / "carton-build-home")
    out = numeric / "repack"
    repack = Command("re-pack, valid lock", [PY, "-m", "carton_backend", "pack", "-q",
                                             str(folder), "-o", str(out)], env)

    def forget_lock() -> None:
        shutil.rmtree(folder / ".carton", ignore_errors=True)

    fresh = Command("fresh lock and pack (numpy + pandas)",
                    [PY, "-m", "carton_backend", "pack", "-q", str(folder), "-o", str(out)],
                    env, prepare=forget_lock)
    results = alternate([repack], args.cold_runs)
    results += alternate([fresh], max(3, args.cold_runs // 3), warmup=0)
    report.add_table("packing", "Workload: packing", results, base=None)


def finder(report: Report, requests_work: Path) -> None:
    print("bench: the finder alone", flush=True)
    archive = next((requests_work / "dist").glob("*.carton"))
    proc = subprocess.run([PY, str(HERE / "finder_micro.py"), str(archive)], check=True,
                          capture_output=True, text=True,
                          env=clean_env({"CARTON_HOME": str(requests_work / "carton-warm")}))
    report.finder = json.loads(proc.stdout.strip().splitlines()[-1])


def memory(report: Report, work: Path, index: PackageIndex, args: argparse.Namespace) -> None:
    """Peak memory of a cold import of a large wheel, against the warm run."""
    print("bench: memory of a cold import of a large wheel", flush=True)
    # Its wheel is new random bytes each time: a lock kept from an earlier run in the
    # same --work folder would pin the previous one.
    shutil.rmtree(work / "memory", ignore_errors=True)
    big = make_wheel(work / "big-wheel", "bigblob", "1.0", files={
        "bigblob/__init__.py": "SIZE = 150\n", "bigblob/blob.bin": os.urandom(150 << 20)})
    index.add(big)
    workload = Workload("memory", "a 150 MB wheel", ("bigblob",),
                        "import bigblob\nprint('big', bigblob.SIZE)", "big 150")
    folder = write_model(workload, work / "memory" / "model")
    env = pack_env(index.url, work / "memory" / "build-home")
    subprocess.run([PY, "-m", "carton_backend", "pack", "-q", str(folder), "-o",
                    str(work / "memory" / "dist")], check=True, env=clean_env(env))
    archive = next((work / "memory" / "dist").glob("*.carton"))
    warm_home, cold_home = work / "memory" / "warm", work / "memory" / "cold"
    argv = [runtime.python(work), "-m", "carton_hook", str(archive)]
    warm = Command("carton warm", argv, {"CARTON_HOME": str(warm_home)}, expect="big 150")
    cold = Command("carton cold", argv, {"CARTON_HOME": str(cold_home)},
                   prepare=lambda: aside.set_aside(cold_home),
                   expect="big 150")
    run_once(warm)
    results = [Result("carton warm"), Result("carton cold")]
    for _ in range(3):
        for command, result in zip((warm, cold), results, strict=True):
            seconds, rss = run_once(command)
            result.seconds.append(seconds)
            result.peak_rss_kb.append(rss)
    report.memory = results
    report.big_wheel_mb = big.stat().st_size / (1 << 20)


def machine() -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(module: str) -> str:
        proc = subprocess.run([PY, "-m", module, "--version"], capture_output=True, text=True,
                              check=False)
        return (proc.stdout or proc.stderr).strip().splitlines()[0] if proc.returncode == 0 \
            else "unavailable"

    uv = shutil.which("uv") or str(Path(PY).parent / "uv")
    uv_version = subprocess.run([uv, "--version"], capture_output=True, text=True,
                                check=False).stdout.strip()
    return {
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "os": f"{platform.system()} {platform.release()}",
        "python": f"CPython {platform.python_version()}",
        "carton": version("carton_backend"),
        "pip": version("pip"),
        "shiv": version("shiv"),
        "pex": version("pex"),
        "uv": uv_version or "unavailable",
        "date": time.strftime("%Y-%m-%d"),
    }


if __name__ == "__main__":
    sys.exit(main())
