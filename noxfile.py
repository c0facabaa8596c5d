"""Sessions: `nox` runs lint, typecheck, tests on every Python (those marked `slow` on 3.11
only), integration, stress and reproducibility.

`nox -s quickstart` builds and runs the example model; CI runs plain `nox`, as the README does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
ROOT = Path(__file__).parent
EXAMPLE = ROOT / "examples" / "quickstart"

nox.options.sessions = ["lint", "typecheck", "tests", "integration", "stress",
                        "reproducibility"]
# A Python that is not installed is skipped, not failed, also where CI=true.
nox.options.error_on_missing_interpreters = False
nox.options.reuse_existing_virtualenvs = True


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".", "mypy", "tomli", "pytest", "nox")
    session.run("mypy")


# trustme makes the test CA and certificates of the loopback HTTPS servers; pytest-xdist
# runs the hermetic tests three at a time (they mostly wait on subprocesses and sockets);
# uv is the oracle that sections locked for other platforms are compared with.
TEST_DEPS = ["pytest", "pytest-xdist", "trustme", "uv"]


def _install(session: nox.Session, *args: str) -> None:
    """`session.install`, then the bytecode of whatever the venv holds without it.

    virtualenv seeds pip (and setuptools before 3.12) without `.pyc` files, and with
    PYTHONDONTWRITEBYTECODE set, as on these machines, each of the hundreds of pip runs of
    a test session (carton resolves with pip) compiled pip's modules again: half of its
    time. The variable stays set for the tests."""
    session.install(*args)
    session.run_install("python", "-c", "import compileall, sysconfig; compileall.compile_dir("
                        "sysconfig.get_paths()['purelib'], quiet=1, workers=0)", silent=True)


# The Python that runs the tests marked `slow` too; the other Pythons leave them out.
FULL_PYTHON = "3.11"


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Hermetic tests: loopback indexes only, frontends run with --no-isolation. The tests
    marked `slow` (frontends driving the backend, the lock's upkeep) run on FULL_PYTHON
    only: what they test is carton's logic, not the interpreter's, and the integration
    session runs real frontends and real locks on each Python. A setuptools that still
    has pkg_resources (81 dropped it) is what test_workingset.py locks and runs."""
    _install(session, ".", *TEST_DEPS, "build", "wheel", "setuptools<81")
    select = [] if session.python == FULL_PYTHON else [
        "-m", "not slow and not stress and not distributed"]
    session.run("pytest", *(session.posargs or [*select, "-n", "3", "tests"]))


@nox.session
def stress(session: nox.Session) -> None:
    """Races and SIGKILL trials on a cold cache (tests marked `stress`): 16 processes
    times 3 rounds, and CARTON_STRESS_KILLS kills (50 unless set); CARTON_FUZZ_CASES
    fuzzed cartons (300 unless set); `cache clear` and `prune` in a loop beside 8 models
    for CARTON_RACE_SECONDS (25). The figures land in CARTON_STRESS_REPORT (default:
    .nox/stress-report.json), with fuzz-report.json and admin-race-report.json beside it."""
    _install(session, ".", *TEST_DEPS, "build", "wheel")
    report = os.environ.get("CARTON_STRESS_REPORT") or str(ROOT / ".nox" / "stress-report.json")
    session.run("pytest", "-m", "stress",
                *(session.posargs or ["tests/e2e/test_stress.py", "tests/e2e/test_fuzz.py",
                                      "tests/cache/test_admin.py"]),
                env={"CARTON_STRESS_REPORT": report})
    session.log(f"figures: {report}")


@nox.session
def bench(session: nox.Session) -> None:
    """carton beside a plain venv, shiv, pex, pip and uv (bench/bench.py): writes
    docs/performance.md. Not in the default sessions (about fifteen minutes). Arguments go to
    bench.py, e.g. `nox -s bench -- --runs 5 --cold-runs 3 --out /tmp/perf.md`."""
    session.install(".", "build", "shiv", "pex", "uv")
    session.run("python", str(ROOT / "bench" / "bench.py"), *session.posargs)


@nox.session(python=PYTHONS)
def integration(session: nox.Session) -> None:
    """Against the real package index: real wheels, sdists and isolated frontends. Two at
    a time: each test runs one process at a time, mostly (pip, a build, a suite)."""
    # nox: the README's quick start and docs/cli.md's nox snippet; tox: its tox snippet.
    _install(session, ".", *TEST_DEPS, "build", "nox", "tox")
    wheelhouse = _own_wheel(session)
    session.run("pytest", *(session.posargs or ["-n", "2", "integration"]),
                env={"CARTON_TEST_WHEELHOUSE": str(wheelhouse)})


@nox.session
def distributed(session: nox.Session) -> None:
    """A carton as the Python of Spark's executors (local-cluster, two executor JVMs) and
    of Dask's workers: integration/test_distributed.py. Needs Java 17; pyspark from PyPI
    is ~450 MB, so this is not a default session (about 6 minutes)."""
    session.install(".", *TEST_DEPS, "pyspark", "dask[distributed]")
    session.run("pytest", "-m", "distributed", *(session.posargs or ["integration"]))


@nox.session
def reproducibility(session: nox.Session) -> None:
    """Build the example twice, from two folders at two times, with a real isolated
    `python -m build`; fail unless the two `.carton` files are byte-identical."""
    session.install("build")
    wheelhouse = _own_wheel(session)
    digests = []
    with tempfile.TemporaryDirectory(prefix="carton-repro-") as tmp:
        for n in (1, 2):
            folder = Path(tmp) / f"copy-{n}" / "quickstart"
            shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".carton", "dist"))
            now = time.time() + n * 3600  # different file times, as a later checkout has
            for path in folder.rglob("*"):
                os.utime(path, (now, now))
            session.run("python", "-m", "build", "--outdir", str(folder / "dist"), str(folder),
                        env=_find_links(wheelhouse))
            (carton,) = (folder / "dist").glob("*.carton")
            digests.append(hashlib.sha256(carton.read_bytes()).hexdigest())
            session.log(f"build {n}: {carton.name} sha256={digests[-1]}")
            time.sleep(2)
    if digests[0] != digests[1]:
        session.error(f"the two builds differ: {digests[0]} != {digests[1]}")
    session.log("reproducible: both builds have the same sha256")
    # What a model project runs in its own noxfile (docs/cli.md#check-reproducible).
    session.install(".")
    with tempfile.TemporaryDirectory(prefix="carton-repro-") as tmp:
        folder = Path(tmp) / "quickstart"
        shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns(".carton", "dist"))
        session.run("python", "-m", "carton_backend", "check-reproducible", str(folder))


@nox.session
def quickstart(session: nox.Session) -> None:
    """Build the example model with `python -m build`, then run it with the runtime."""
    session.install(".", "build")
    wheelhouse = _own_wheel(session)
    session.run("python", "-m", "build", str(EXAMPLE), env=_find_links(wheelhouse))
    (carton,) = (EXAMPLE / "dist").glob("*.carton")
    session.log(f"built {carton}; running it:")
    session.run("python", "-m", "carton_hook", str(carton), "1", "2", "3")


def _own_wheel(session: nox.Session) -> Path:
    """Build carton-backend's wheel into a folder that frontends can use as find-links."""
    wheelhouse = Path(session.create_tmp()) / "wheelhouse"
    shutil.rmtree(wheelhouse, ignore_errors=True)
    session.install("build")
    session.run("python", "-m", "build", "--wheel", "--outdir", str(wheelhouse), str(ROOT),
                silent=True)
    return wheelhouse


def _find_links(wheelhouse: Path) -> dict[str, str]:
    """pip (in the isolated build environment) finds carton-backend in the wheelhouse,
    beside whatever find-links the machine already configures."""
    existing = os.environ.get("PIP_FIND_LINKS", "")
    return {"PIP_FIND_LINKS": " ".join(filter(None, [str(wheelhouse), existing]))}
