"""The finder's behaviour inside a loaded model, through real runs (IMPORTS.md's cases)."""

from __future__ import annotations

import importlib.machinery
import json
import os
import posixpath
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ..conftest import run_hook
from ..factory import c_compiler, compile_shared, make_wheel
from ..indexserver import PackageIndex


def model(body: str) -> dict[str, str]:
    """A model.py whose main() runs `body` (indented by the caller's text)."""
    lines = "".join(f"    {line}\n" for line in body.strip().splitlines())
    return {"model.py": f"def main():\n{lines}"}


def files_fetched(index: PackageIndex) -> list[str]:
    return [r for r in index.requests if r.startswith("/files/")]


def test_find_spec_and_metadata_download_nothing(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    ep = "[console_scripts]\nalpha-cli = alpha:cli\n[demo.plugins]\nfirst = alpha:plugin\n"
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.2", requires=["beta>=1"],
                        files={"alpha/__init__.py": "", "alpha-1.2.dist-info/entry_points.txt":
                               ep}))
    pypi.add(make_wheel(tmp_path / "w", "beta", "1.0"))
    carton = build_carton("alpha\n", model("""
import importlib.util
from importlib import metadata
spec = importlib.util.find_spec('alpha')
assert spec is not None
print(spec.name, spec.parent, spec.has_location, spec.loader.is_package('alpha'))
print(metadata.version('alpha'), metadata.version('beta'))
print(metadata.requires('alpha'))
print(sorted(e.name for e in metadata.entry_points(group='demo.plugins')))
names = [d.metadata['Name'] for d in metadata.distributions()]
print(sorted(names))
print(metadata.packages_distributions().get('alpha'))
# Listed before the wheel is installed, on every Python (3.12 lists only what exists).
print('alpha/__init__.py' in [str(f) for f in metadata.files('alpha')])
"""))
    pypi.reset_counts()
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["alpha alpha True True", "1.2 1.0", "['beta>=1']",
                                        "['first']",
                                        "['alpha', 'beta']", "['alpha']", "True"]
    assert files_fetched(pypi) == []


def test_a_damaged_metadata_pack_is_said_in_one_line_where_the_model_asked(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.2"))
    carton = build_carton("alpha\n", model("""
from importlib import metadata
print(metadata.version('alpha'))
"""))
    assert run_hook(hermetic_env, carton).stdout.strip() == "1.2"
    [pack] = (tmp_path / "carton-home" / "models").glob("*/.carton/dist-info.pack")
    pack.write_bytes(pack.read_bytes()[:-30])  # its index cut short
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"carton: error: {pack}: damaged"), proc.stderr
    assert "cache clear" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert proc.stderr.rstrip().endswith("(needed at model.py:3)"), proc.stderr
    verbose = run_hook(hermetic_env, "-v", carton)  # the traceback through the model's call
    assert verbose.returncode == 1 and "CacheError" in verbose.stderr
    assert 'model.py", line 3' in verbose.stderr
    assert run_hook(hermetic_env, "cache", "clear").returncode == 0
    again = run_hook(hermetic_env, carton)
    assert (again.returncode, again.stdout.strip()) == (0, "1.2"), again.stderr


def test_files_gives_real_paths_after_import(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    carton = build_carton("alpha\n", model("""
import alpha
from importlib import metadata
init = [f for f in metadata.files('alpha') if f.name == '__init__.py'][0]
print(init.locate().resolve() == __import__('pathlib').Path(alpha.__file__).resolve())
"""))
    proc = run_hook(hermetic_env, carton)
    assert (proc.returncode, proc.stdout.strip()) == (0, "True"), proc.stderr


def test_files_of_a_wheel_with_data_schemes_are_where_the_entry_has_them(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """`files()` answers from the RECORD recorded at pack time, whose `.data/` paths are
    the wheel's: each must name where the installed entry holds the file, as the RECORD
    the install wrote does."""
    data = "gamma-1.0.data"
    pypi.add(make_wheel(tmp_path / "w", "gamma", "1.0", files={
        "gamma/__init__.py": "",
        f"{data}/purelib/gamma_extra.py": "VALUE = 2\n",
        f"{data}/platlib/gamma_native/__init__.py": "",
        f"{data}/data/share/gamma/info.txt": "hello\n",
        f"{data}/headers/gamma.h": "int gamma;\n",
        f"{data}/scripts/gamma-tool": "echo tool\n"}))
    carton = build_carton("gamma\n", model("""
import json, os, gamma
from importlib import metadata
files = metadata.files('gamma')
print(json.dumps({'entry': os.path.dirname(os.path.dirname(gamma.__file__)),
                  'files': {str(f): os.path.isfile(f.locate()) for f in files}}))
"""))
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    record = (Path(out["entry"]) / "gamma-1.0.dist-info" / "RECORD").read_text()
    # installer names a platlib member of a purelib wheel `./gamma_native/...`
    installed = {posixpath.normpath(line.split(",")[0]) for line in record.splitlines()}
    assert set(out["files"]) == installed - {"gamma-1.0.dist-info/INSTALLER"}
    assert all(out["files"].values()), out["files"]
    assert {"gamma_extra.py", "gamma_native/__init__.py", "data/share/gamma/info.txt",
            "include/gamma.h", "bin/gamma-tool"} <= set(out["files"])


def test_namespace_split_over_two_wheels(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    proto = pypi.add(make_wheel(tmp_path / "w", "nsproto", "1.0",
                                {"nsp/proto/__init__.py": "NAME = 'proto'\n",
                                 "nsp/proto/data.txt": "hello"}))
    api = pypi.add(make_wheel(tmp_path / "w", "nsapi", "1.0",
                              {"nsp/api/__init__.py": "NAME = 'api'\n"}))
    carton = build_carton("nsproto\nnsapi\n", model("""
import importlib.resources
import nsp
import nsp.proto
print(nsp.proto.NAME, importlib.resources.files('nsp.proto').joinpath('data.txt').read_text())
import sys
print(sys.argv[1] == 'first' and len(list(nsp.__path__)))
if sys.argv[1] == 'second':
    import nsp.api
    print(nsp.api.NAME, len(list(nsp.__path__)))
    print(sorted(p.name for p in importlib.resources.files('nsp').iterdir()))
"""))
    pypi.reset_counts()
    first = run_hook(hermetic_env, carton, "first")
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == ["proto hello", "1"]
    assert files_fetched(pypi) == [f"/files/{proto.name}"], "nsp.api must not be fetched"
    second = run_hook(hermetic_env, carton, "second")
    assert second.returncode == 0, second.stderr
    assert second.stdout.splitlines()[2:] == ["api 2", "['api', 'proto']"]
    assert files_fetched(pypi) == [f"/files/{proto.name}", f"/files/{api.name}"]


def test_model_module_beats_locked_one_but_a_stray_folder_does_not(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "six", "1.0", {"six.py": "WHO = 'locked six'\n"}))
    pypi.add(make_wheel(tmp_path / "w", "pyyaml", "1.0",
                        {"yaml/__init__.py": "WHO = 'locked yaml'\n"}))
    carton = build_carton("six\npyyaml\n", {
        "six.py": "WHO = 'model six'\n",
        "yaml/readme.txt": "a data folder that happens to be called yaml",
        **model("import six, yaml\nprint(six.WHO, '|', yaml.WHO)")})
    proc = run_hook(hermetic_env, carton)
    assert (proc.returncode, proc.stdout.strip()) == (0, "model six | locked yaml"), proc.stderr


def test_a_package_that_imports_its_extension_under_its_own_name_loads(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """opencv's `cv2/__init__.py` puts its own folder on `sys.path`, takes itself out of
    `sys.modules` and imports `cv2` again to get `cv2/cv2.abi3.so`: with the locked
    package answered first, it found itself again and stopped ("recursion is
    detected"). Here the extension module is a `.py` of the same name."""
    init = """
import importlib, os, sys
if hasattr(sys, 'NATIVE_LOADING'):
    raise ImportError('recursion: the package found itself again')
sys.NATIVE_LOADING = True
saved = list(sys.path)
sys.path.insert(1, os.path.dirname(os.path.abspath(__file__)))
package = sys.modules.pop('nativepkg')
native = importlib.import_module('nativepkg')
sys.modules['nativepkg'] = package
sys.path[:] = saved
del sys.NATIVE_LOADING
WHERE = native.WHERE
"""
    pypi.add(make_wheel(tmp_path / "w", "nativepkg", "1.0", {
        "nativepkg/__init__.py": init,
        "nativepkg/nativepkg.py": "WHERE = 'the extension module'\n"}))
    carton = build_carton("nativepkg\n", model("""
import nativepkg, sys
print(nativepkg.WHERE, sys.modules['nativepkg'] is nativepkg)
"""))
    for run in ("cold", "warm"):
        proc = run_hook(hermetic_env, carton)
        assert (proc.returncode, proc.stdout.strip()) == (0, "the extension module True"), (
            run, proc.stderr)


def test_a_childs_script_folder_beats_a_locked_module_as_in_a_venv(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """A script run with `sys.executable` imports its neighbour before the locked
    package of that name, and an appended folder's comes after it."""
    pypi.add(make_wheel(tmp_path / "w", "six", "1.0", {"six.py": "WHO = 'locked six'\n"}))
    carton = build_carton("six\n", {
        "tools/six.py": "WHO = 'the script six'\n",
        "tools/run.py": "import six\nprint(six.WHO)\n",
        "later/six.py": "WHO = 'appended six'\n",
        **model("""
import os, subprocess, sys
here = os.path.dirname(os.path.abspath(__file__))
subprocess.run([sys.executable, os.path.join(here, 'tools', 'run.py')], check=True)
sys.path.append(os.path.join(here, 'later'))
import six
print(six.WHO)
""")})
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["the script six", "locked six"]


@pytest.mark.parametrize("worker", ["forked", "started"])
def test_a_first_run_leaves_no_file_open_in_development_mode(
        worker: str, tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """`PYTHONDEVMODE=1` shows each file object collected unclosed as a ResourceWarning
    (pytest turns one into a failure): the downloaded wheel (the worker's), and the
    worker's pipes, were."""
    for name in ("alpha", "beta", "gamma"):
        pypi.add(make_wheel(tmp_path / "w", name, "1.0"))
    # The model imports one of three (the worker may still install the others at its
    # exit), then waits for the worker's end (its pipes then end before this process).
    carton = build_carton("alpha\nbeta\ngamma\n", model("""
import alpha, time
print('ok')
time.sleep(0.5)
"""))
    env = {**hermetic_env, "PYTHONDEVMODE": "1",
           **({"CARTON_NO_FORK": "1"} if worker == "started" else {})}
    for run in ("cold", "warm"):
        proc = run_hook(env, carton)
        assert (proc.returncode, proc.stdout.strip()) == (0, "ok"), (run, proc.stderr)
        assert "Warning" not in proc.stderr, (run, proc.stderr)


@pytest.mark.parametrize("home", ["absolute", "relative"])
def test_a_child_with_an_environment_of_its_own_uses_its_parents_cache(
        home: str, tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """A child started with `env={}` or another HOME, in another folder, boots from its
    parent's plan: what it imports comes from, and installs into, the parent's cache (a
    cache of its own downloaded again; a relative CARTON_HOME broke its installs)."""
    alpha = pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    beta = pypi.add(make_wheel(tmp_path / "w", "beta", "1.0"))
    carton = build_carton("alpha\nbeta\n", model("""
import subprocess, sys
import alpha
for env in ({}, {'HOME': '/nonexistent'}):
    child = subprocess.run([sys.executable, '-c', 'import alpha, beta; print(alpha.__file__); '
                            'print(beta.__file__)'], env=env, cwd='/', capture_output=True,
                           text=True)
    print(child.returncode, *child.stdout.split(), repr(child.stderr))
"""))
    cache = tmp_path / "carton-home"
    env = {**hermetic_env, "CARTON_HOME": "carton-home" if home == "relative" else str(cache)}
    pypi.reset_counts()
    proc = run_hook(env, carton, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for line in proc.stdout.splitlines():
        status, alpha_file, beta_file, stderr = line.split(" ", 3)
        assert (status, stderr) == ("0", "''"), line
        assert Path(alpha_file).is_relative_to(cache / "pythonpackages"), line
        assert Path(beta_file).is_relative_to(cache / "pythonpackages"), line
    assert sorted(files_fetched(pypi)) == sorted([f"/files/{alpha.name}",
                                                  f"/files/{beta.name}"])


@pytest.mark.parametrize("name", ["urllib3", "filelock", "packaging", "installer", "isal"])
def test_the_hooks_own_dependencies_never_shadow_locked_ones(
        name: str, tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", name, "0.0.1",
                        {f"{name}/__init__.py": "__version__ = '0.0.1-locked'\n"}))
    pypi.add(make_wheel(tmp_path / "w", "other", "1.0"))
    carton = build_carton(f"{name}\nother\n", model(f"""
import other  # a cold install first: the hook uses its own {name} for it
import {name}, sys
print({name}.__version__, [m for m in sys.modules if m.startswith('{name}.')])
"""))
    proc = run_hook(hermetic_env, carton)
    assert (proc.returncode, proc.stdout.strip()) == (0, "0.0.1-locked []"), proc.stderr


def test_install_failure_is_an_import_error_with_the_cause(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    wheel = pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    carton = build_carton("alpha\n", model("""
try:
    import alpha
except ImportError as exc:
    print(type(exc).__name__, '|', exc)
"""))
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF  # the server now serves other bytes of the same size
    wheel.write_bytes(bytes(data))
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 0, proc.stderr
    kind, _, message = proc.stdout.strip().partition(" | ")
    assert kind == "CartonImportError"
    assert "cannot import alpha" in message and "sha256" in message
    entries = Path(hermetic_env["CARTON_HOME"]).glob("pythonpackages/*/[0-9a-f]*")
    assert list(entries) == [], "nothing may be left in the cache"


def test_isolated_from_the_interpreters_site_packages(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    extra = tmp_path / "on-pythonpath"
    (extra / "outsider").mkdir(parents=True)
    (extra / "outsider" / "__init__.py").write_text("")
    carton = build_carton("alpha\n", model("""
for name in ('pytest', 'outsider'):
    try:
        __import__(name)
        print(name, 'imported')
    except ImportError:
        print(name, 'blocked')
"""))
    env = {**hermetic_env, "PYTHONPATH": str(extra)}
    proc = run_hook(env, carton)
    assert proc.stdout.splitlines() == ["pytest blocked", "outsider blocked"], proc.stderr
    proc = run_hook(env, "--system-site-packages", carton)
    assert proc.stdout.splitlines() == ["pytest imported", "outsider imported"], proc.stderr


def test_concurrent_cold_processes_download_each_wheel_once(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    for name in ("alpha", "beta", "gamma"):
        pypi.add(make_wheel(tmp_path / "w", name, "1.0"))
    carton = build_carton("alpha\nbeta\ngamma\n", model("""
import threading
threads = [threading.Thread(target=__import__, args=(n,)) for n in ('alpha', 'beta', 'gamma')]
for t in threads: t.start()
for t in threads: t.join()
import alpha, beta, gamma
print('ok')
"""))
    pypi.reset_counts()
    procs = [subprocess.Popen([sys.executable, "-m", "carton_hook", str(carton)],
                              env=hermetic_env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(8)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert (proc.returncode, out.strip()) == (0, "ok"), err
    assert sorted(files_fetched(pypi)) == sorted(
        f"/files/{n}-1.0-py3-none-any.whl" for n in ("alpha", "beta", "gamma"))


def test_modules_behave_as_if_imported_normally(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {
        "alpha/__init__.py": "class Point:\n    def __init__(self, x):\n        self.x = x\n"
                             "def answer():\n    return 42\n"}))
    carton = build_carton("alpha\n", model("""
import importlib, inspect, pickle
from importlib.machinery import SourceFileLoader
import alpha
print(isinstance(alpha.__loader__, SourceFileLoader), alpha.__spec__.origin == alpha.__file__)
print(inspect.getsource(alpha.answer).split()[1])
print(pickle.loads(pickle.dumps(alpha.Point(3))).x)
importlib.invalidate_caches()
print(importlib.reload(alpha).answer())
"""))
    for run in ("cold", "warm"):
        proc = run_hook(hermetic_env, carton)
        assert proc.returncode == 0, (run, proc.stderr)
        assert proc.stdout.splitlines() == ["True True", "answer():", "3", "42"]



def test_every_import_surface_answers_before_the_first_import(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """What runpy, `python -m`, pytest --pyargs, pkgutil, importlib.resources and inspect
    ask of a locked package never imported before: the answers a venv gives. Each
    surface gets a wheel of its own, so each one meets a spec whose wheel is not
    installed yet (the model names them only in strings: nothing is prefetched)."""
    wheels = {
        "specpkg": {"specpkg/__init__.py": ""},
        "runme": {"runme/__init__.py": "",
                  "runme/__main__.py": "import sys\nprint('runme main', sys.argv[1:])\n"},
        "solo": {"solo.py": "print('solo ran as', __name__)\n"},
        "gamma": {"gamma/__init__.py": "", "gamma/data.txt": "gamma data"},
        "delta": {"delta.py": "def f():\n    return 'delta'\n"},
        "kappa": {"kappa/__init__.py": "", "kappa/sub.py": ""},
        "theta": {"theta.py": "VALUE = 'theta value'\n"},
        "iota": {"iota.py": "VALUE = 1\n"},
        "eps": {"eps/__init__.py": "", "eps/data.txt": "eps data"},
        "lazy": {"lazy.py": "print('lazy runs')\nVALUE = 'lazy value'\n"},
        "made": {"made.py": "VALUE = 'made value'\n"},
    }
    for name, files in wheels.items():
        pypi.add(make_wheel(tmp_path / "w", name, "1.0", files))
    carton = build_carton("\n".join(wheels) + "\n", model("""
import importlib, importlib.resources, importlib.util, inspect, os, pkgutil, runpy
import subprocess, sys
spec = importlib.util.find_spec('specpkg')
print(os.path.isfile(spec.origin), spec.origin.endswith(os.path.join('specpkg', '__init__.py')),
      spec.submodule_search_locations == [os.path.dirname(spec.origin)],
      spec.cached == importlib.util.cache_from_source(spec.origin))
proc = subprocess.run([sys.executable, '-m', 'runme', 'x'], capture_output=True, text=True)
print(proc.returncode, proc.stdout.strip(), proc.stderr[-300:] or 'ok')
runpy.run_module('solo', run_name='__main__')
print(importlib.resources.files('gamma').joinpath('data.txt').read_text())
loader = pkgutil.get_loader('delta')
print(loader.get_filename('delta').endswith('delta.py'), loader.get_source('delta').splitlines()[0])
spec = importlib.util.find_spec('kappa')
print([m.name for m in pkgutil.walk_packages(spec.submodule_search_locations, 'kappa.')])
print(pkgutil.resolve_name('theta:VALUE'))
iota = importlib.import_module('iota')
print(inspect.getsourcefile(iota).endswith('iota.py'), importlib.reload(iota).VALUE)
reader = importlib.util.find_spec('eps').loader.get_resource_reader('eps')
print(reader.files().joinpath('data.txt').read_text())
spec = importlib.util.find_spec('lazy')  # the LazyLoader recipe of importlib's docs
spec.loader = importlib.util.LazyLoader(spec.loader)
lazy = importlib.util.module_from_spec(spec)
sys.modules['lazy'] = lazy
spec.loader.exec_module(lazy)
print('lazy loaded')
print(lazy.VALUE)
made = importlib.util.spec_from_loader('made', pkgutil.get_loader('made'))  # a spec of one's own
module = importlib.util.module_from_spec(made)
made.loader.exec_module(module)
print(module.VALUE, module.__file__.endswith('made.py'))
"""))
    for run in ("cold", "warm"):
        proc = run_hook(hermetic_env, carton)
        assert proc.returncode == 0, (run, proc.stderr)
        assert proc.stdout.splitlines() == [
            "True True True True", "0 runme main ['x'] ok", "solo ran as __main__", "gamma data",
            "True def f():", "['kappa.sub']", "theta value", "True 1", "eps data",
            "lazy loaded", "lazy runs", "lazy value", "made value True"], run


GUARD = """
import builtins, os
HOME = os.path.realpath(os.environ["CARTON_HOME"])
def _inside(path):
    try:
        return os.path.realpath(os.fspath(path)).startswith(HOME)
    except TypeError:
        return False
def _refuse(what, path):
    raise PermissionError(13, f"read-only cache: {what}", str(path))
_open = builtins.open
def guarded_open(file, mode="r", *args, **kwargs):
    if any(c in mode for c in "wxa+") and _inside(file):
        _refuse("open", file)
    return _open(file, mode, *args, **kwargs)
builtins.open = guarded_open
for name in ("mkdir", "makedirs", "rename", "replace", "remove", "unlink", "rmdir", "symlink",
             "utime"):
    original = getattr(os, name)
    def guarded(*args, _original=original, _name=name, **kwargs):
        if args and _inside(args[0]):
            _refuse(_name, args[0])
        return _original(*args, **kwargs)
    setattr(os, name, guarded)
_os_open = os.open
WRITING = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
def guarded_os_open(path, flags, *args, **kwargs):
    if flags & WRITING and _inside(path):
        _refuse("os.open", path)
    return _os_open(path, flags, *args, **kwargs)
os.open = guarded_os_open
"""

# With GUARD: compiling a module of the cache is refused too (an image whose cache was
# precompiled never compiles at run time).
NO_COMPILE = """
_compile = builtins.compile
def guarded_compile(source, filename, *args, **kwargs):
    if isinstance(filename, str) and _inside(filename):
        raise AssertionError(f"compiled at run time: {filename}")
    return _compile(source, filename, *args, **kwargs)
builtins.compile = guarded_compile
"""


def test_warm_run_writes_nothing_so_a_read_only_cache_works(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    carton = build_carton("alpha\n", model("import alpha, subprocess, sys\nprint('ok')\n"
                                           "subprocess.run([sys.executable, '-c', 'import alpha'],"
                                           " check=True)"))
    assert run_hook(hermetic_env, carton).returncode == 0
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD)
    env = {**hermetic_env, "PYTHONPATH": str(guard), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = run_hook(env, carton)
    assert (proc.returncode, proc.stdout.strip()) == (0, "ok"), proc.stderr


def test_imported_modules_keep_their_pyc_although_bytecode_writing_is_off(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """Compiled on first import, kept in the entry; modules never imported stay
    uncompiled (a wheel is not compiled whole before publishing)."""
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {
        "alpha/__init__.py": "VALUE = 1\n", "alpha/used.py": "", "alpha/unused.py": ""}))
    carton = build_carton("alpha\n", model("import alpha.used, sys\n"
                                           "print(alpha.__cached__)\nprint(alpha.used.__cached__)\n"
                                           "print(__cached__)"))  # the model's own module
    env = {**hermetic_env, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = run_hook(env, carton)
    assert proc.returncode == 0, proc.stderr
    init, used, own = map(Path, proc.stdout.split())
    assert init.is_file() and used.is_file(), "the .pyc must exist although bytecode " \
                                              "writing is off"
    assert sorted(p.name.split(".")[0] for p in init.parent.iterdir()) == ["__init__", "used"]
    # The extracted model's folder is the cache's too: its modules keep theirs.
    assert own.is_file() and own.parent.parent == Path(hermetic_env["CARTON_HOME"]).joinpath(
        "models", own.parent.parent.name)
    stamps = [init.stat().st_mtime_ns, used.stat().st_mtime_ns, own.stat().st_mtime_ns]
    assert run_hook(env, carton).returncode == 0  # warm: read, not written again
    assert [init.stat().st_mtime_ns, used.stat().st_mtime_ns, own.stat().st_mtime_ns] == stamps


# A model's lines that wait (until `deadline`) for alpha/extra.py's .pyc in `cache`.
WAIT_FOR_EXTRA = ("while not list(cache.glob('extra.*.pyc')) and time.monotonic() < deadline:\n"
                  "    time.sleep(0.05)\n")


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="compiling ahead needs a second core")
def test_a_first_run_compiles_ahead_on_another_core(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """The worker that installed what the model imports then compiles what those
    imports will load (module-level imports, followed): a module the model never
    imports, but that alpha imports at module level under a condition, shows it.
    (alpha holds enough source for it to pay: `compileahead.AHEAD_WORTH`.)"""
    from carton_hook.installing.compileahead import AHEAD_WORTH

    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {
        "alpha/__init__.py": "import os\nif os.environ.get('ALPHA_EXTRA'):\n"
                             "    from . import extra\nVALUE = 1\n",
        "alpha/extra.py": "E = 1\n", "alpha/unrelated.py": "U = 1\n",
        "alpha/filler.py": "#" * AHEAD_WORTH + "\n"}))
    # The walk stops when the model's process ends, so this model waits for it (a model
    # that ends at once may end before the walk has started, on a loaded machine).
    carton = build_carton("alpha\n", model(
        "import alpha, pathlib, time\n"
        "cache = pathlib.Path(alpha.__file__).parent / '__pycache__'\n"
        "deadline = time.monotonic() + 60\n" + WAIT_FOR_EXTRA +
        "print(alpha.__file__)"))
    proc = run_hook({**hermetic_env, "PYTHONDONTWRITEBYTECODE": "1"}, carton)
    assert proc.returncode == 0, proc.stderr
    package = Path(proc.stdout.strip()).parent
    assert list((package / "__pycache__").glob("extra.*.pyc")), "nothing compiled extra.py"
    assert not list((package / "__pycache__").glob("unrelated.*"))


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="compiling ahead needs a second core")
def test_the_worker_lets_go_of_the_plans_lock_before_it_compiles_ahead(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """Done installing, the worker compiles ahead itself: processes of the same model
    started together wait on the plan's lock while it installs, not while it compiles.
    The model takes that lock as soon as it is free: it is, while the worker still
    compiles alpha.big (a second of it), before alpha.extra, which comes after it."""
    big = "".join(f"def f{i}(a, b):\n    return a + b * {i}\n" for i in range(60_000))
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {
        "alpha/__init__.py": "import os\nif os.environ.get('ALPHA_EXTRA'):\n"
                             "    from . import big, extra\nVALUE = 1\n",
        "alpha/big.py": big, "alpha/extra.py": "E = 1\n"}))
    carton = build_carton("alpha\n", model(
        "import alpha, fcntl, glob, os, pathlib, time\n"
        "cache = pathlib.Path(alpha.__file__).parent / '__pycache__'\n"
        "[lock] = glob.glob(os.path.join(os.environ['CARTON_HOME'], 'plans', '*.lock'))\n"
        "fd = os.open(lock, os.O_RDWR)\n"
        "deadline = time.monotonic() + 60\n"
        "while time.monotonic() < deadline:\n"
        "    try:\n"
        "        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "        break\n"
        "    except BlockingIOError:\n"
        "        time.sleep(0.005)\n"
        "print('extra compiled:', bool(list(cache.glob('extra.*.pyc'))))\n" + WAIT_FOR_EXTRA +
        "print('walked:', bool(list(cache.glob('extra.*.pyc'))))"))
    proc = run_hook({**hermetic_env, "PYTHONDONTWRITEBYTECODE": "1"}, carton)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["extra compiled: False", "walked: True"]


def test_a_read_only_cache_without_bytecode_compiles_in_memory(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """Filled by `fetch` (nothing imported yet, so nothing compiled), then read-only. (The
    import is in a helper function: nothing predicts it, so nothing compiles it ahead.)"""
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    carton = build_carton("alpha\n", {
        "model.py": "def helper():\n    import alpha\n    return alpha.__name__\n"
                    "def main():\n    print('ok', helper())\n"})
    assert run_hook(hermetic_env, "fetch", carton).returncode == 0
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD)
    env = {**hermetic_env, "PYTHONPATH": str(guard), "PYTHONDONTWRITEBYTECODE": "1"}
    for _ in range(2):
        proc = run_hook(env, carton)
        assert (proc.returncode, proc.stdout.strip()) == (0, "ok alpha"), proc.stderr
    assert not list(Path(hermetic_env["CARTON_HOME"]).rglob("*.pyc"))


def test_fetch_compile_leaves_nothing_to_compile_at_run_time(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """An image: `fetch --compile` once, then a read-only cache that never compiles."""
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {
        "alpha/__init__.py": "from . import deep\n", "alpha/deep.py": "X = 1\n",
        "alpha/later.py": "LATER = 2\n"}))
    pypi.add(make_wheel(tmp_path / "w", "beta", "1.0", {"beta.py": "B = 3\n"}))
    carton = build_carton("alpha\nbeta\n", {
        "model.py": "import helper\ndef main():\n    helper.run()\n",
        "helper.py": "def run():\n    import alpha, alpha.later, beta\n"
                     "    print(alpha.deep.X, alpha.later.LATER, beta.B)\n"})
    proc = run_hook({**hermetic_env, "PYTHONDONTWRITEBYTECODE": "1"}, "fetch", "--compile",
                    carton)
    assert proc.returncode == 0, proc.stderr
    assert "modules compiled" in proc.stdout
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD + NO_COMPILE)
    env = {**hermetic_env, "PYTHONPATH": str(guard), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = run_hook(env, carton)
    assert (proc.returncode, proc.stdout.strip()) == (0, "1 2 3"), proc.stderr
    verify = run_hook(hermetic_env, "verify", "--cache", carton)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_pkgutil_style_namespace_across_two_wheels(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    init = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"
    pypi.add(make_wheel(tmp_path / "w", "zpkg-a", "1.0",
                        {"zpkg/__init__.py": init, "zpkg/a.py": "NAME = 'a'\n"}))
    pypi.add(make_wheel(tmp_path / "w", "zpkg-b", "1.0",
                        {"zpkg/__init__.py": init, "zpkg/b.py": "NAME = 'b'\n"}))
    carton = build_carton("zpkg-a\nzpkg-b\n", model("""
import zpkg.a, zpkg.b
print(zpkg.a.NAME, zpkg.b.NAME, len(zpkg.__path__))
"""))
    for run in ("cold", "warm"):
        proc = run_hook(hermetic_env, carton)
        assert (proc.returncode, proc.stdout.strip()) == (0, "a b 2"), (run, proc.stderr)


def test_pth_path_lines_are_honoured_and_pth_code_never_runs(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    flag = tmp_path / "pth-code-ran"
    pth = f"vendored\nimport pathlib; pathlib.Path({str(flag)!r}).touch()\n"
    pypi.add(make_wheel(tmp_path / "w", "oldstyle", "1.0", {
        "oldstyle.pth": pth, "vendored/helper.py": "WHO = 'from a .pth path line'\n"}))
    carton = build_carton("oldstyle\n", model("import helper\nprint(helper.WHO)"))
    lock = json.loads((tmp_path / "models" / "demo-model" / ".carton" / "carton.lock")
                      .read_text())
    (package,) = lock["environments"][0]["packages"]
    assert package["tool"]["carton"] == {"imports": ["helper", "vendored.helper"],
                                         "path-roots": ["vendored"]}
    for run in ("cold", "warm"):
        proc = run_hook(hermetic_env, carton)
        assert (proc.returncode, proc.stdout.strip()) == (0, "from a .pth path line"), \
            (run, proc.stderr)
    assert not flag.exists(), "an import line of a wheel's .pth file must never run"


def test_kill_9_mid_download_then_a_retry_succeeds(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    import os
    import signal
    import threading
    import time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    wheel = pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {
        "alpha/__init__.py": "", "alpha/blob.bin": os.urandom(2_000_000)}))
    carton = build_carton("alpha\n", model("import alpha\nprint('ok')"))
    data = wheel.read_bytes()
    started = threading.Event()
    slow = {"on": True}

    class Slow(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            for i in range(0, len(data), 65536):
                if slow["on"]:
                    started.set()
                    time.sleep(0.2)
                try:
                    self.wfile.write(data[i:i + 65536])
                except OSError:
                    return

    # Serve the wheel at the URL the lock recorded: stop the index, listen on its port.
    port = int(pypi.url.split(":")[2].split("/")[0])
    pypi.stop()
    slow_server = ThreadingHTTPServer(("127.0.0.1", port), Slow)
    threading.Thread(target=slow_server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "carton_hook", str(carton)],
                                env=hermetic_env, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert started.wait(60), "the download never started"
        os.killpg(proc.pid, signal.SIGKILL)  # the model and its worker, mid-download
        proc.wait(10)
        root = next(Path(hermetic_env["CARTON_HOME"]).glob("pythonpackages/py*"))
        assert [p.name for p in root.iterdir() if not p.name.startswith(".")] == []
        slow["on"] = False
        started_at = time.monotonic()
        again = run_hook(hermetic_env, carton)
        assert (again.returncode, again.stdout.strip()) == (0, "ok"), again.stderr
        assert time.monotonic() - started_at < 30, "a lock of the killed run was still held"
    finally:
        slow_server.shutdown()
        slow_server.server_close()


@pytest.mark.skipif(c_compiler() is None or not sys.platform.startswith("linux"),
                    reason="needs a C compiler and ELF (Linux)")
def test_extension_links_a_library_from_another_wheel(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    # The torch -> nvidia-* pattern, one level deeper: usesfoo's extension needs
    # libfoo.so.1 (wheel foolib), which needs libbar.so.2 (wheel barlib). Each finds the
    # next through an RPATH that is right only when all share one site-packages.
    from packaging.tags import sys_tags

    tag = str(next(iter(sys_tags())))
    ext = importlib.machinery.EXTENSION_SUFFIXES[0]
    c = tmp_path / "c"
    bar = compile_shared(c / "libbar.so.2", "int bar_base(void) { return 40; }",
                         soname="libbar.so.2")
    foo = compile_shared(c / "libfoo.so.1",
                         "int bar_base(void); int foo_answer(void) { return bar_base() + 2; }",
                         soname="libfoo.so.1", links=[c / "libbar.so.2"],
                         runpath="$ORIGIN/../../barlib/lib")
    module = compile_shared(c / f"_ext{ext}", """
#include <Python.h>
int foo_answer(void);
static PyObject *answer(PyObject *self, PyObject *args) { return PyLong_FromLong(foo_answer()); }
static PyMethodDef methods[] = {{"answer", answer, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_ext", NULL, -1, methods};
PyMODINIT_FUNC PyInit__ext(void) { return PyModule_Create(&mod); }
""", links=[c / "libfoo.so.1"], runpath="$ORIGIN/../foolib/lib", python_extension=True)
    wheels = tmp_path / "w"
    for wheel in (
        make_wheel(wheels, "barlib", "1.0", tag=tag,
                   files={"barlib/__init__.py": "", "barlib/lib/libbar.so.2": bar}),
        make_wheel(wheels, "foolib", "1.0", tag=tag, requires=["barlib"],
                   files={"foolib/__init__.py": "", "foolib/lib/libfoo.so.1": foo}),
        make_wheel(wheels, "usesfoo", "1.0", tag=tag, requires=["foolib"],
                   files={"usesfoo/__init__.py": "from ._ext import answer\n",
                          f"usesfoo/_ext{ext}": module}),
    ):
        pypi.add(wheel)
    # The control: pip-installed into one folder, the wheels work as they are.
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--find-links",
                    str(wheels), "--target", str(target), "usesfoo"], check=True,
                   env=hermetic_env)
    control = subprocess.run([sys.executable, "-c", "import usesfoo; print(usesfoo.answer())"],
                             env={**hermetic_env, "PYTHONPATH": str(target)},
                             capture_output=True, text=True, check=False)
    assert control.stdout == "42\n", control.stderr
    carton = build_carton("usesfoo\n", model("""
import sys
import barlib
print('libfoo loaded early:', any('libfoo' in line for line in open('/proc/self/maps')))
import usesfoo
from importlib.machinery import SourceFileLoader
print(usesfoo.answer(), isinstance(usesfoo.__loader__, SourceFileLoader))
"""))
    for run in ("cold", "warm"):
        proc = run_hook(hermetic_env, carton)
        assert proc.returncode == 0, (run, proc.stderr)
        assert proc.stdout.splitlines() == ["libfoo loaded early: False",
                                            "42 True"], run


def test_pkgutil_iter_modules_lists_locked_names_without_installing(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", requires=["single", "nsportion"]))
    pypi.add(make_wheel(tmp_path / "w", "single", "1.0", files={"single.py": "X = 1\n"}))
    pypi.add(make_wheel(tmp_path / "w", "nsportion", "1.0",
                        files={"nsdemo/portion/__init__.py": ""}))
    carton = build_carton("alpha\n", {**model("""
import pkgutil
found = {m.name: m.ispkg for m in pkgutil.iter_modules()}
print(sorted((n, found[n]) for n in ('alpha', 'single', 'nsdemo', 'helper')))
print('pytest' in found)
"""), "helper.py": ""})
    pypi.reset_counts()
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "[('alpha', True), ('helper', False), ('nsdemo', True), ('single', False)]", "False"]
    assert files_fetched(pypi) == []


def test_a_wheel_that_ships_a_stdlib_name_never_shadows_it(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """THREATS S1: a top-level `json.py` in a wheel, and a `.pth` that would write a flag."""
    flag = tmp_path / "pth-code-ran"
    pypi.add(make_wheel(tmp_path / "w", "sneaky", "1.0", {
        "sneaky/__init__.py": "", "json.py": "HIJACKED = True\n",
        "sneaky.pth": f"import pathlib; pathlib.Path({str(flag)!r}).touch()\n"}))
    carton = build_carton("sneaky\n", model("""
import json, sneaky, sysconfig
print(hasattr(json, 'HIJACKED'), json.__file__.startswith(sysconfig.get_paths()['stdlib']))
"""))
    for run in ("cold", "warm"):
        proc = run_hook(hermetic_env, carton)
        assert (proc.returncode, proc.stdout.strip()) == (0, "False True"), (run, proc.stderr)
    assert not flag.exists()


def test_the_first_run_installs_what_the_source_imports_together(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """The plan's worker installs what the model's source imports while the model starts;
    the imports wait for it (no worker of their own), and a conditional import is left
    to its first use."""
    for name in ("alpha", "beta", "gamma"):
        pypi.add(make_wheel(tmp_path / "w", name, "1.0"))
    carton = build_carton("alpha\nbeta\ngamma\n", {"model.py": """
import glob, os, sys
def main():
    import alpha
    import beta
    entries = glob.glob(os.path.join(os.environ['CARTON_HOME'], 'pythonpackages', '*', '*',
                                     '.carton-complete'))
    print(len(entries))
    if len(sys.argv) > 1:
        import gamma
"""})
    pypi.reset_counts()
    proc = run_hook(hermetic_env, carton)
    assert (proc.returncode, proc.stdout.strip()) == (0, "2"), proc.stderr
    assert sorted(files_fetched(pypi)) == [f"/files/{n}-1.0-py3-none-any.whl"
                                           for n in ("alpha", "beta")]
    proc = run_hook(hermetic_env, carton, "and gamma")  # a conditional import: on first use
    assert (proc.returncode, proc.stdout.strip()) == (0, "2"), proc.stderr
    assert len(files_fetched(pypi)) == 3



def test_the_model_starts_while_the_plan_worker_still_installs(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """`fast` is imported while `slow` is still downloading (the index holds it back);
    `slow`, imported next, waits for the same worker: one download of each. A dependency
    that is never imported (`unused`, which `fast` requires) does not hold the model up."""
    import threading

    pypi.add(make_wheel(tmp_path / "w", "unused", "1.0"))
    # An extension module: the lock cannot tell which dependencies importing `fast`
    # imports (carton_backend/wheels/loadimports.py), so all of them are prefetched.
    pypi.add(make_wheel(tmp_path / "w", "fast", "1.0", {
        "fast/__init__.py": "", "fast/_speedups.abi3.so": b"\x7fELF"}, requires=["unused"]))
    pypi.add(make_wheel(tmp_path / "w", "slow", "1.0"))
    flag = tmp_path / "fast-imported"
    carton = build_carton("fast\nslow\n", model(f"""
import fast, pathlib
pathlib.Path({str(flag)!r}).touch()
import slow
print(slow.__name__)"""))
    gate = threading.Event()
    pypi.held.update({"slow-1.0-py3-none-any.whl": gate, "unused-1.0-py3-none-any.whl": gate})
    pypi.reset_counts()
    proc = subprocess.Popen([sys.executable, "-m", "carton_hook", str(carton)],
                            env=hermetic_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 60
        while not flag.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert flag.exists(), "the model did not start while a prefetched wheel downloaded"
    finally:
        gate.set()
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode, out.strip()) == (0, "slow"), err
    assert sorted(files_fetched(pypi)) == [f"/files/{n}-1.0-py3-none-any.whl"
                                           for n in ("fast", "slow", "unused")]

def _traced_first_run(env: dict[str, str], carton: Path,
                      trace: Path) -> tuple[str, list[list[str]]]:
    """Run `carton` with CARTON_TRACE into `trace`: what it printed, and the trace's
    lines (seconds, pid, thread, step) in time order, once the worker has installed the
    prefetch. The worker may
    outlive the model's process by a few steps: it finishes the prefetch (the model
    waited only for the wheel it imports) and then ends."""
    proc = run_hook({**env, "CARTON_TRACE": str(trace)}, carton)
    assert proc.returncode == 0, proc.stderr
    deadline = time.monotonic() + 60
    while ("worker: prefetch installed" not in trace.read_text()
           and time.monotonic() < deadline):
        time.sleep(0.05)
    lines = [line.split(" ", 3) for line in trace.read_text().splitlines()]
    return proc.stdout, sorted(lines, key=lambda line: float(line[0]))


def test_an_import_installs_even_where_cache_clear_removed_the_plan(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """The worker that installs an import's wheel reads the plan's file, which `cache
    clear` and `prune` may remove while the model runs (once the first run's worker has
    let go of the plan's lock): the model's process writes it again from what it read.
    (`test_admin`'s race met it: "the plan ... is gone or unreadable".)"""
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    pypi.add(make_wheel(tmp_path / "w", "beta", "1.0"))
    carton = build_carton("alpha\nbeta\n", model(
        "import glob, importlib, os\n"
        "plans = glob.glob(os.path.join(os.environ['CARTON_HOME'], 'plans', '*.plan'))\n"
        "for plan in plans:\n"
        "    os.remove(plan)\n"
        "beta = importlib.import_module('be' + 'ta')  # not in the prefetch\n"
        "print(len(plans), beta.__version__)"))
    proc = run_hook(hermetic_env, carton)
    assert (proc.returncode, proc.stdout) == (0, "1 1.0\n"), proc.stderr
    assert len(list((Path(hermetic_env["CARTON_HOME"]) / "plans").glob("*.plan"))) == 1


def test_a_first_run_compiles_what_it_imports_while_it_waits_for_the_wheel(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """While the model's process waits for alpha's entry (2,000 files to unpack), it
    compiles the modules `import alpha` loads from the wheel the worker downloaded
    (loading/earlycode.py); its import then takes that code, and writes the `.pyc`."""
    files = {f"alpha/filler/m{i}.py": f"X = {i}\n" for i in range(2000)}
    files["alpha/filler/__init__.py"] = ""
    files["alpha/__init__.py"] = "from . import first\nVALUE = first.F\n"
    files["alpha/first.py"] = "F = 1\n"
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", files))
    carton = build_carton("alpha\n", model(
        "import alpha\nprint(alpha.VALUE, alpha.__file__)"))
    trace = tmp_path / "trace.txt"
    printed, lines = _traced_first_run({**hermetic_env, "PYTHONDONTWRITEBYTECODE": "1"},
                                       carton, trace)
    value, init = printed.split()
    assert value == "1"
    waited = [step for _, _, _, step in lines if step.startswith("model: waited")]
    assert waited == ["model: waited, compiling 2 modules meanwhile"], lines
    for module in ("__init__", "first"):
        assert list((Path(init).parent / "__pycache__").glob(f"{module}.*.pyc")), module


def test_a_first_run_traces_its_steps_and_extracts_while_the_worker_starts(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """CARTON_TRACE gets each step of both processes, in one timeline; the model's
    process extracts the archive and selects the section while the worker starts and
    imports what downloading needs (loading/selection.py), and tells it what the model's
    source imports, which the worker then need not read again; packaging, if the
    model's process imported it to select, is out of `sys.modules` again."""
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    carton = build_carton("alpha\n", {"model.py": (
        "import sys\ndef main():\n    import alpha\n"
        "    print(sorted(m for m in sys.modules if m.split('.')[0] == 'packaging'))\n")})
    trace = tmp_path / "trace.txt"
    printed, lines = _traced_first_run(hermetic_env, carton, trace)
    assert printed == "[]\n"  # imported to select, then taken out again
    steps = [step for _, _, _, step in lines]
    assert len({pid for _, pid, _, _ in lines}) == 2  # the model's process and its worker
    order = ["model: starting the worker", "model: model opened", "model: plan written",
             "worker: the model's process wrote the plan",
             "worker: told what the model's source imports (2)", "worker: ready",
             "model: going on"]
    assert [s for s in steps if s in order] == order, steps
    wheel = "alpha-1.0-py3-none-any.whl"
    assert steps.index(f"{wheel}: fetching") < steps.index(f"{wheel}: unpacking"), steps
    assert f"{wheel}: installed" in steps, steps
    assert "worker: prefetch installed" in steps and "model: prefix made" in steps, steps
    # The worker imports what downloading needs before the plan comes, and unpacking's
    # modules (installer's) once its downloads have started.
    worker = ["worker: imported what downloading needs",
              "worker: the model's process wrote the plan", "worker: ready",
              "worker: imported what unpacking needs"]
    assert [s for s in steps if s in worker] == worker, steps
    warm = run_hook({**hermetic_env, "CARTON_TRACE": str(trace)}, carton)
    assert (warm.returncode, warm.stdout) == (0, "[]\n"), warm.stderr
    assert len(trace.read_text().splitlines()) == len(lines)  # a warm run: no step to trace


def test_packaging_imported_to_select_is_gone_before_the_model_runs_with_site_packages(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """With the system's site-packages let through, nothing else takes the copy of
    packaging that the model's process imported to select (loading/selection.py) out
    of `sys.modules`: a model that asks for packaging then finds the system's (it did
    not lock one), not a module carton left behind."""
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    carton = build_carton("alpha\n", {"model.py": (
        "import sys\ndef main():\n    import alpha\n"
        "    print(sorted(m for m in sys.modules if m.split('.')[0] == 'packaging'))\n")})
    env = {**hermetic_env, "CARTON_SYSTEM_SITE_PACKAGES": "1"}
    printed, lines = _traced_first_run(env, carton, tmp_path / "trace.txt")
    assert "model: plan written" in [step for _, _, _, step in lines]
    assert printed == "[]\n"


# A worker's start held back (its `sitecustomize`, on the path workerclient gives it)
# until the model's process has run the model, or for at most 20 s.
HELD_WORKER = """
import os, time
deadline = time.monotonic() + 20
while not os.path.exists({flag!r}) and time.monotonic() < deadline:
    time.sleep(0.01)
if not os.path.exists({flag!r}):
    open({flag!r} + ".waited-out", "w").close()
"""


def test_a_new_plan_whose_wheels_are_cached_does_not_wait_for_the_worker(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """A model whose plan is new (re-packed, moved) but whose wheels are all in the cache
    goes on once it has selected: its worker, which imports urllib3 and installer
    first, would have said ready some 45 ms later with nothing to install."""
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    flag = tmp_path / "model-ran"
    carton = build_carton("alpha\n", {"model.py": (
        f"def main():\n    import alpha, pathlib\n    pathlib.Path({str(flag)!r}).touch()\n"
        "    print(alpha.__name__)\n")})
    assert run_hook(hermetic_env, carton).returncode == 0
    flag.unlink()
    shutil.rmtree(Path(hermetic_env["CARTON_HOME"], "plans"))
    held = tmp_path / "held"
    held.mkdir()
    (held / "sitecustomize.py").write_text(HELD_WORKER.format(flag=str(flag)))
    # The worker's own interpreter runs that sitecustomize: it is not forked.
    env = {**hermetic_env, "CARTON_RUNTIME_DEPS": str(held), "CARTON_NO_FORK": "1"}
    printed, lines = _traced_first_run(env, carton, tmp_path / "trace.txt")
    assert printed == "alpha\n"
    assert not Path(f"{flag}.waited-out").exists()  # the model ran while the worker waited
    steps = [step for _, _, _, step in lines]
    order = ["model: plan written", "model: going on", "worker: ready"]
    assert [s for s in steps if s in order] == order, steps
    assert not any(step.endswith(": fetching") for step in steps), steps
    assert "worker: imported what unpacking needs" not in steps, steps  # nothing to unpack


def test_a_worker_told_the_plan_is_written_leaves_the_model_folder_alone(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """Once the model's process has extracted the archive and written the plan, the
    worker reads the plan and nothing else of the model: it used to open the model
    again, which extracted the archive again where the folder was cleared meanwhile
    (`cache clear`), racing with the clearing (a `rmtree` that failed with ENOTEMPTY)."""
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    flag = tmp_path / "model-ran"
    carton = build_carton("alpha\n", {"model.py": (
        "import pathlib, shutil\n"
        "def main():\n    import alpha\n"
        "    shutil.rmtree(pathlib.Path(__file__).parent)  # cleared while the model runs\n"
        f"    pathlib.Path({str(flag)!r}).touch()\n")})
    assert run_hook(hermetic_env, carton).returncode == 0  # its wheel is cached now
    home = Path(hermetic_env["CARTON_HOME"])
    flag.unlink()
    shutil.rmtree(home / "plans")
    assert list((home / "models").iterdir()) == []  # the model cleared its own folder
    held = tmp_path / "held"
    held.mkdir()
    (held / "sitecustomize.py").write_text(HELD_WORKER.format(flag=str(flag)))
    # The worker's own interpreter runs that sitecustomize: it is not forked.
    env = {**hermetic_env, "CARTON_RUNTIME_DEPS": str(held), "CARTON_NO_FORK": "1"}
    _, lines = _traced_first_run(env, carton, tmp_path / "trace.txt")
    assert not Path(f"{flag}.waited-out").exists()  # the worker read the plan afterwards
    steps = [step for _, _, _, step in lines]
    assert "worker: the model's process wrote the plan" in steps, "\n".join(steps)
    assert list((home / "models").iterdir()) == []


def test_a_first_run_unpacks_its_wheels_one_at_a_time(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    """They download together, then take turns (installing/turns.py), each until it is
    published: unpacking them together under one interpreter lock made each one finish
    about when the last did."""
    pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0", {"alpha/__init__.py": "import beta, gamma"},
                        requires=["beta", "gamma"]))
    for name in ("beta", "gamma", "delta"):
        deps = ["delta"] * (name != "delta")
        pypi.add(make_wheel(tmp_path / "w", name, "1.0", {
            f"{name}/__init__.py": "".join(f"import {d}\n" for d in deps)}, requires=deps))
    carton = build_carton("alpha\n", {"model.py": "def main():\n    import alpha\n"})
    _, lines = _traced_first_run(hermetic_env, carton, tmp_path / "trace.txt")
    steps = [step for _, _, _, step in lines]
    # One at a time, or handed over to one ranked before (each wheel before its
    # dependencies: alpha, beta, delta, gamma) that is unpacked whole before the one it
    # interrupted goes on.
    rank = ["alpha", "beta", "delta", "gamma"]
    held: list[str] = []
    for step in steps:
        name, _, what = step.partition("-1.0-py3-none-any.whl: ")
        if what == "unpacking":
            assert not held or rank.index(name) < rank.index(held[-1]), steps
            held.append(name)
        elif what == "installed":
            assert held and held.pop() == name, steps
    assert not held and sum(step.endswith(": installed") for step in steps) == 4, steps


def test_a_failed_prefetch_is_reported_by_the_import_without_a_second_download(
        tmp_path: Path, pypi: PackageIndex, build_carton: Callable[..., Path],
        hermetic_env: dict[str, str]) -> None:
    wheel = pypi.add(make_wheel(tmp_path / "w", "alpha", "1.0"))
    carton = build_carton("alpha\n", {"model.py": "def main():\n    import alpha\n"})
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    wheel.write_bytes(bytes(data))
    pypi.reset_counts()
    proc = run_hook(hermetic_env, carton)
    assert proc.returncode == 1
    # carton's failure, not the model's: one line, with where the model needed it.
    assert proc.stderr.startswith("carton: error: cannot import alpha: ")
    assert len(proc.stderr.splitlines()) == 1 and "sha256" in proc.stderr
    assert proc.stderr.rstrip().endswith("(needed at model.py:2)"), proc.stderr
    assert len(files_fetched(pypi)) == 1
    verbose = run_hook(hermetic_env, "-v", carton)  # the traceback, with its cause
    assert "CartonImportError: cannot import alpha" in verbose.stderr
    assert "The above exception was the direct cause" in verbose.stderr
