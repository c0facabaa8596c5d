"""The contenders, each built once from the same wheels, and the commands that run them
warm (caches filled) and cold (every cache empty before each run)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import runtime
from aside import set_aside
from report import BESIDE_SECOND, FLOOR, INSTALL_FLOOR, INSTALL_FLOOR_AHEAD, WARM_FLOOR
from timing import Command, clean_env, run_settled
from workloads import Workload, model_source, pack_env, write_model

PY = sys.executable
HERE = Path(__file__).resolve().parent


class Builder:
    """Builds every contender of one workload below `root`."""

    def __init__(self, workload: Workload, root: Path, wheelhouse: Path, index_url: str) -> None:
        self.w = workload
        self.root = root
        self.wheelhouse = wheelhouse
        self.index_url = index_url
        self.src = root / "src"
        self.src.mkdir(parents=True, exist_ok=True)
        (self.src / "model.py").write_text(model_source(workload))
        self.script = self.src / "model.py"
        # carton, shiv and pex run under a venv as bare as the plain venv's (runtime.py);
        # this interpreter (PY) builds them.
        self.run_py = runtime.python(root.parent)

    def _run(self, *argv: str, env: dict[str, str] | None = None) -> None:
        subprocess.run(argv, check=True, env=clean_env(env or {}), stdout=subprocess.DEVNULL)

    def venv(self) -> Command:
        target = self.root / "venv"
        self._run(PY, "-m", "venv", "--without-pip", str(target))
        self._run(PY, "-m", "pip", "--python", str(target / "bin" / "python"), "install", "-q",
                  "--no-index", "-f", str(self.wheelhouse), *self.w.requirements)
        return Command("plain venv", [str(target / "bin" / "python"), str(self.script)],
                       expect=self.w.expect)

    def venv_compiling(self) -> Command:
        """The plain venv with its packages' `.pyc` removed before each run (after
        `venv()`): no download, no unpacking, only the compiling of what the model
        imports, which every first run that compiles on import also does. No first run
        that compiles on import on one core can be faster than this one."""
        target = self.root / "venv"

        def prepare() -> None:
            for cache in list((target / "lib").glob("python*/site-packages/**/__pycache__")):
                set_aside(cache)

        return Command(FLOOR,
                       [str(target / "bin" / "python"), str(self.script)], prepare=prepare,
                       expect=self.w.expect)

    def install_floor(self, ahead: bool = False) -> Command:
        """The carton's wheels downloaded from the same index, checked and unpacked by a
        bare second process with the standard library alone, then imported by the
        model's process (installfloor.py), on an empty folder each run (after
        `carton()`); with `ahead`, that process then compiles ahead."""
        folder = self.root / ("install-floor-ahead" if ahead else "install-floor")
        lock = self.root / "carton.lock.json"
        with zipfile.ZipFile(self.archive) as archive:
            lock.write_bytes(archive.read("model/.carton/carton.lock"))
        return Command(INSTALL_FLOOR_AHEAD if ahead else INSTALL_FLOOR,
                       [self.run_py, str(HERE / "installfloor.py"), str(folder), str(lock),
                        str(self.script), *(["--ahead"] if ahead else [])],
                       prepare=lambda: set_aside(folder), expect=self.w.expect)

    def carton(self) -> tuple[Command, Command, Path]:
        folder = write_model(self.w, self.root / "model")
        env = pack_env(self.index_url, self.root / "carton-build-home")
        self._run(PY, "-m", "carton_backend", "pack", str(folder), "-o", str(self.root / "dist"),
                  env=env)
        archive = next((self.root / "dist").glob("*.carton"))
        warm_home, cold_home = self.root / "carton-warm", self.root / "carton-cold"
        argv = [self.run_py, "-m", "carton_hook", str(archive)]
        warm = Command("carton warm", argv, {"CARTON_HOME": str(warm_home)},
                       expect=self.w.expect)
        cold = Command("carton cold", argv, {"CARTON_HOME": str(cold_home)},
                       prepare=lambda: set_aside(cold_home), expect=self.w.expect)
        self.archive, self.warm_home = archive, warm_home
        return warm, cold, folder

    def _cold_run_before(self, home: Path) -> Callable[[], None]:
        """A `prepare` that makes an untimed cold run of the carton (after `carton()`)
        into `home`, until its worker and helpers end too: they would otherwise run
        beside the timed run that follows."""
        argv = [self.run_py, "-m", "carton_hook", str(self.archive)]

        def prepare() -> None:
            set_aside(home)
            run_settled(argv, {"CARTON_HOME": str(home)})

        return prepare

    def carton_second(self) -> Command:
        """The run right after a cold run (after `carton()`): what a first run left in the
        cache (the `.pyc` of what it imported) is all the second one has."""
        home = self.root / "carton-second"
        return Command("carton second run", [self.run_py, "-m", "carton_hook", str(self.archive)],
                       {"CARTON_HOME": str(home)}, prepare=self._cold_run_before(home),
                       expect=self.w.expect)

    def venv_after_cold(self, venv: Command) -> Command:
        """The venv's warm run, each right after an untimed cold run of the carton (after
        `carton()`), as each second run is: what the machine does after a first run's
        thousands of files (writing back, reclaiming) weighs on both alike."""
        return Command(BESIDE_SECOND, venv.argv,
                       prepare=self._cold_run_before(self.root / "carton-cold-before-venv"),
                       expect=self.w.expect)

    def carton_crowd(self, processes: int, warm: bool = False) -> Command:
        """`processes` runs of the carton started at once on an empty cache (a Pool, a
        Spark executor's workers), or with `warm` on the filled one (what the same
        imports cost with nothing to install); done when the last one is (after
        `carton()`)."""
        home = self.warm_home if warm else self.root / "carton-crowd"
        launch = ("import subprocess, sys\n"
                  "procs = [subprocess.Popen(sys.argv[2:]) for _ in range(int(sys.argv[1]))]\n"
                  "sys.exit(max(p.wait() for p in procs))\n")
        return Command(f"carton {'warm' if warm else 'cold'}, {processes} processes at once",
                       [PY, "-c", launch, str(processes), self.run_py, "-m", "carton_hook",
                        str(self.archive)], {"CARTON_HOME": str(home)},
                       prepare=None if warm else lambda: set_aside(home), expect=self.w.expect)

    def warm_floor(self) -> Command:
        """The least any launcher of this carton's model from carton's warm cache does,
        in one standard-library module run with `-m` as carton is (warmfloor.py; after
        `carton()`, on carton's warm home)."""
        from carton_hook.planning.planfile import PLAN_FORMAT

        return Command(WARM_FLOOR, [self.run_py, "-m", "warmfloor", str(PLAN_FORMAT),
                                    str(self.warm_home), str(self.archive)],
                       expect=self.w.expect)

    def carton_executable(self) -> Command:
        """The same carton run as `python model.carton` (after `carton()`): the runtime
        it carries, not an installed carton_hook."""
        return Command("carton warm, python model.carton", [self.run_py, str(self.archive)],
                       {"CARTON_HOME": str(self.warm_home)}, expect=self.w.expect)

    def shiv(self) -> tuple[Command, Command]:
        target = self.root / "model.pyz"
        self._run(PY, "-m", "shiv", "-q", "--no-index", "-f", str(self.wheelhouse),
                  "--site-packages", str(self.src), "-e", "model:main", "-o", str(target),
                  *self.w.requirements)
        warm_root, cold_root = self.root / "shiv-warm", self.root / "shiv-cold"
        warm = Command("shiv warm", [self.run_py, str(target)], {"SHIV_ROOT": str(warm_root)},
                       expect=self.w.expect)
        cold = Command("shiv cold", [self.run_py, str(target)], {"SHIV_ROOT": str(cold_root)},
                       prepare=lambda: set_aside(cold_root), expect=self.w.expect)
        return warm, cold

    def pex(self, venv: bool) -> tuple[Command, Command]:
        label = "pex --venv" if venv else "pex"
        target = self.root / ("model-venv.pex" if venv else "model.pex")
        self._run(PY, "-m", "pex", "--no-pypi", "-f", str(self.wheelhouse), "-D", str(self.src),
                  "-e", "model:main", *(["--venv"] if venv else []), "-o", str(target),
                  *self.w.requirements)
        tag = "venv" if venv else "zip"
        warm_root, cold_root = self.root / f"pex-{tag}-warm", self.root / f"pex-{tag}-cold"
        warm = Command(f"{label} warm", [self.run_py, str(target)], {"PEX_ROOT": str(warm_root)},
                       expect=self.w.expect)
        cold = Command(f"{label} cold", [self.run_py, str(target)], {"PEX_ROOT": str(cold_root)},
                       prepare=lambda: set_aside(cold_root), expect=self.w.expect)
        return warm, cold

    def pip_then_run(self) -> Command:
        target = self.root / "pip-fresh"
        python = target / "bin" / "python"
        line = (f"{PY} -m venv --without-pip {target} && "
                f"{PY} -m pip --python {python} install -q --no-cache-dir --no-index "
                f"-f {self.wheelhouse} {' '.join(self.w.requirements)} && {python} {self.script}")
        return Command("pip install, then run", [line], shell=True,
                       prepare=lambda: set_aside(target), expect=self.w.expect)

    def uv_then_run(self, from_index: bool = False) -> Command:
        """uv installing the workload into a fresh venv with an empty cache, then the
        model: from the wheels on disk, or (`from_index`) downloaded from the index, as
        carton downloads them."""
        target, cache = self.root / "uv-fresh", self.root / "uv-cache"
        python = target / "bin" / "python"
        uv = shutil.which("uv") or str(Path(PY).parent / "uv")
        source = (f"--index-url {self.index_url}" if from_index
                  else f"--no-index -f {self.wheelhouse}")
        line = (f"{uv} venv -q --python {PY} {target} && "
                f"{uv} pip install -q --python {python} {source} "
                f"{' '.join(self.w.requirements)} && {python} {self.script}")

        def prepare() -> None:
            set_aside(target)
            set_aside(cache)

        name = "uv pip install from the index, then run" if from_index else (
            "uv pip install, then run")
        return Command(name, [line], {"UV_CACHE_DIR": str(cache)},
                       shell=True, prepare=prepare, expect=self.w.expect)
