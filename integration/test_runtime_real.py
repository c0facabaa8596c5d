"""The runtime with real wheels from the real index, cold and then warm: C extensions
with bundled libraries, a C loader, namespace packages across wheels, entry points and
console scripts."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

from .conftest import ROOT, carton

MODEL = '''
import json, subprocess, sys
from importlib import metadata

def main():
    out = {}
    import numpy
    out["inv"] = numpy.linalg.inv(numpy.array([[1.0, 2.0], [3.0, 4.0]])).round(3).tolist()
    import yaml
    out["yaml"] = yaml.load("a: [1, 2]", Loader=yaml.CLoader)
    from google.protobuf import descriptor_pb2
    from google.api import http_pb2
    out["proto"] = [descriptor_pb2.FileDescriptorProto.__name__, http_pb2.HttpRule.__name__]
    import google
    out["google_path"] = len(list(google.__path__))
    out["google_dists"] = sorted(metadata.packages_distributions()["google"])
    import zope.interface
    class IThing(zope.interface.Interface):
        pass
    out["zope"] = IThing.__name__
    out["plugins"] = sorted(e.name for e in metadata.entry_points(group="console_scripts")
                            if e.dist and e.dist.metadata["Name"].lower() == "numpy")
    script = subprocess.run(["f2py", "-v"], capture_output=True, text=True)
    out["f2py"] = script.returncode
    out["versions"] = {n: metadata.version(n) for n in ("numpy", "pyyaml", "protobuf")}
    print(json.dumps(out))
'''

REQUIREMENTS = "numpy\npyyaml\nprotobuf\ngoogleapis-common-protos\nzope.interface\n"


def test_real_wheels_cold_then_warm(tmp_path: Path, real_env: dict[str, str]) -> None:
    model = tmp_path / "m"
    model.mkdir()
    (model / "pyproject.toml").write_text(
        '[project]\nname = "real-runtime"\nversion = "1.0"\n\n'
        '[tool.carton]\nentrypoint = "model:main"\n')
    (model / "requirements.txt").write_text(REQUIREMENTS)
    (model / "model.py").write_text(MODEL)
    proc = carton(real_env, "pack", model)
    assert proc.returncode == 0, proc.stderr
    archive = model / "dist" / "real_runtime-1.0.carton"
    results = []
    for _ in ("cold", "warm"):
        run = subprocess.run([sys.executable, "-m", "carton_hook", str(archive)], env=real_env,
                             capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stderr
        results.append(json.loads(run.stdout))
    cold, warm = results
    assert cold == warm
    assert cold["inv"] == [[-2.0, 1.0], [1.5, -0.5]]
    assert cold["yaml"] == {"a": [1, 2]}
    assert cold["proto"] == ["FileDescriptorProto", "HttpRule"]
    assert cold["google_path"] == 2
    assert cold["google_dists"] == ["googleapis-common-protos", "protobuf"]
    assert cold["zope"] == "IThing"
    assert "f2py" in cold["plugins"] and cold["f2py"] == 0
    lock = json.loads((model / ".carton" / "carton.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["environments"][0]["packages"]}
    assert cold["versions"] == {n: locked[n] for n in ("numpy", "pyyaml", "protobuf")}


def pack_and_run(tmp_path: Path, env: dict[str, str], name: str, requirements: str,
                 body: str) -> list[str]:
    """Pack a one-function model and run it twice (cold, then warm); its output lines."""
    model = tmp_path / name
    model.mkdir()
    (model / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "1.0"\n\n'
        '[tool.carton]\nentrypoint = "model:main"\n')
    (model / "requirements.txt").write_text(requirements)
    lines = "".join(f"    {line}\n" for line in body.strip().splitlines())
    (model / "model.py").write_text(f"def main():\n{lines}")
    proc = carton(env, "pack", model)
    assert proc.returncode == 0, proc.stderr
    outputs = []
    for _ in ("cold", "warm"):
        run = subprocess.run([sys.executable, "-m", "carton_hook",
                              str(model / "dist" / f"{name.replace('-', '_')}-1.0.carton")],
                             env=env, capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stderr
        outputs.append(run.stdout.splitlines())
    assert outputs[0] == outputs[1]
    return outputs[0]


def test_distutils_comes_from_locked_setuptools(tmp_path: Path,
                                                real_env: dict[str, str]) -> None:
    out = pack_and_run(tmp_path, real_env, "distutils-user", "setuptools\n", """
from distutils.version import LooseVersion
import distutils
print(LooseVersion('1.10') > LooseVersion('1.9'), 'setuptools' in distutils.__file__)
""")
    assert out == ["True True"]


def test_pkg_resources_of_an_older_locked_setuptools_sees_locked_packages(
        tmp_path: Path, real_env: dict[str, str]) -> None:
    out = pack_and_run(tmp_path, real_env, "old-code", "setuptools==69.5.1\nsix==1.16.0\n", """
import warnings
warnings.simplefilter('ignore')
import pkg_resources
print(pkg_resources.get_distribution('six').version,
      pkg_resources.get_distribution('setuptools').version)
eps = {ep.name: ep for ep in pkg_resources.iter_entry_points('distutils.commands')}
print(eps['build_py'].load().__name__)
""")
    assert out == ["1.16.0 69.5.1", "build_py"]


def test_locked_versions_of_the_hooks_own_dependencies_win(
        tmp_path: Path, real_env: dict[str, str]) -> None:
    out = pack_and_run(tmp_path, real_env, "old-deps",
                       "urllib3==1.26.20\nfilelock==3.12.4\npackaging==21.3\nsix==1.16.0\n", """
import six  # a cold install: the hook's own urllib3, filelock and packaging do the work
import urllib3, filelock, packaging
print(urllib3.__version__, filelock.__version__, packaging.__version__)
""")
    assert out == ["1.26.20 3.12.4 21.3"]


def test_protobuf_with_nspkg_pth_beside_a_pep420_sibling(
        tmp_path: Path, real_env: dict[str, str]) -> None:
    out = pack_and_run(tmp_path, real_env, "old-proto",
                       "protobuf==3.20.3\ngoogleapis-common-protos==1.56.4\n", """
from google.protobuf import descriptor_pb2
from google.type import date_pb2
print(descriptor_pb2.FileDescriptorProto.__name__, date_pb2.Date(year=2026).year)
""")
    assert out == ["FileDescriptorProto 2026"]


def test_the_quickstart_example_runs_cold_and_warm(tmp_path: Path,
                                                   real_env: dict[str, str]) -> None:
    import shutil

    example = Path(__file__).resolve().parents[1] / "examples" / "quickstart"
    model = tmp_path / "quickstart"
    shutil.copytree(example, model, ignore=shutil.ignore_patterns(".carton", "dist"))
    proc = carton(real_env, "pack", model)
    assert proc.returncode == 0, proc.stderr
    for _ in ("cold", "warm"):
        run = subprocess.run([sys.executable, "-m", "carton_hook",
                              str(model / "dist" / "quickstart-0.1.0.carton"), "1", "2"],
                             env=real_env, capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip().endswith("predict([1.0, 2.0]) = [2.5, 4.5]")


POOLS_MODEL = '''
import json, os, sys
import multiprocessing
from concurrent.futures import ProcessPoolExecutor


def where(_):
    # six is imported here only, in the pool's processes: on a cold run they install it,
    # two at once (joblib imports numpy in the parent already).
    import numpy, six
    return [sys.executable, numpy.__file__, six.__file__, int(numpy.arange(4).sum())]


def main():
    import joblib
    out = {}
    for backend in ("loky", "multiprocessing"):
        out[backend] = joblib.Parallel(n_jobs=2, backend=backend)(
            joblib.delayed(where)(i) for i in range(4))
    for method in ("fork", "spawn", "forkserver"):
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method)) as pool:
            out[method] = list(pool.map(where, range(4)))
    out["parent"] = [sys.executable, "six" in sys.modules]
    print(json.dumps(out))
'''


def test_process_pools_of_joblib_and_concurrent_futures_use_the_locked_packages(
        tmp_path: Path, real_env: dict[str, str]) -> None:
    """joblib's loky workers (started as `python -m` of a module of the locked joblib) and
    multiprocessing pool, and concurrent.futures' pools with each start method, run in the
    carton's prefix and import the locked packages from its cache, installing on a cold run
    what their parent never imported."""
    model = tmp_path / "pools"
    model.mkdir()
    (model / "pyproject.toml").write_text(
        '[project]\nname = "pools"\nversion = "1.0"\n\n[tool.carton]\nentrypoint = "model:main"\n')
    (model / "requirements.txt").write_text("joblib\nnumpy\nsix\n")
    (model / "model.py").write_text(POOLS_MODEL)
    proc = carton(real_env, "pack", model)
    assert proc.returncode == 0, proc.stderr
    cache = str(Path(real_env["CARTON_HOME"]).resolve() / "pythonpackages")
    outputs = []
    for _ in ("cold", "warm"):
        run = subprocess.run([sys.executable, "-m", "carton_hook",
                              str(model / "dist" / "pools-1.0.carton")],
                             env=real_env, capture_output=True, text=True, check=False,
                             timeout=600)
        assert run.returncode == 0, run.stderr
        outputs.append(json.loads(run.stdout))
    assert outputs[0] == outputs[1]
    out = outputs[0]
    prefix_python, parent_has_six = out.pop("parent")
    assert not parent_has_six
    assert sorted(out) == ["fork", "forkserver", "loky", "multiprocessing", "spawn"]
    for pool, results in out.items():
        assert len(results) == 4, pool
        for executable, numpy_file, six_file, total in results:
            assert executable == prefix_python, pool
            assert numpy_file.startswith(cache) and six_file.startswith(cache), pool
            assert total == 6, pool


def test_werkzeugs_reloader_restarts_the_model(tmp_path: Path, real_env: dict[str, str]) -> None:
    """Flask's debug mode restarts the process with the command werkzeug rebuilds from
    `sys.executable`, `__main__` and `sys.argv` (`-m carton_hook MODEL ARGS`): the prefix's
    Python, which loaded the carton at start-up, runs the model again."""
    out = pack_and_run(tmp_path, real_env, "reloaded", "werkzeug\n", """
import os, subprocess, sys
if os.environ.get('RELOADED'):
    import werkzeug
    print('restarted', werkzeug.__name__, os.path.basename(sys.argv[0]), sys.argv[1:])
    return 0
from werkzeug._reloader import _get_args_for_reloading
args = _get_args_for_reloading()
print(args[0] == sys.executable, args[1:3])
sys.stdout.flush()
return subprocess.run(args, env={**os.environ, 'RELOADED': '1'}).returncode
""")
    assert out == ["True ['-m', 'carton_hook']", "restarted werkzeug reloaded-1.0.carton []"]


def test_opencv_loads_its_extension_module(tmp_path: Path, real_env: dict[str, str]) -> None:
    """`cv2/__init__.py` puts its own folder on `sys.path` and imports `cv2` again to load
    `cv2/cv2.abi3.so`, as a venv lets it: the entry in front of the standard library
    comes before the locked packages (it stopped with "recursion is detected")."""
    out = pack_and_run(tmp_path, real_env, "vision", "opencv-python-headless\n", """
import cv2, numpy
print(cv2.cvtColor(numpy.zeros((4, 6, 3), numpy.uint8), cv2.COLOR_BGR2GRAY).shape)
print(type(cv2.imread).__name__)
""")
    assert out == ["(4, 6)", "builtin_function_or_method"]


def test_nbconvert_finds_its_templates_with_the_scope_docs_workaround(
        tmp_path: Path, real_env: dict[str, str]) -> None:
    """docs/scope.md's snippet, as written: a locked nbconvert's templates are in its
    cache entry, not under `sys.prefix`, and `JUPYTER_PATH` names them."""
    text = (ROOT / "docs" / "scope.md").read_text()
    block = re.search(r"```python\n(.*?)```", text.split("nbconvert is one such", 1)[1],
                      re.DOTALL)
    assert block, "docs/scope.md: no python block after 'nbconvert is one such'"
    out = pack_and_run(tmp_path, real_env, "notebooks", "nbconvert\n", dedent(block[1]) + """
import nbformat
from nbconvert import HTMLExporter
notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('print(6 * 7)')])
body, _ = HTMLExporter().from_notebook_node(notebook)
print('print' in body and '<html' in body)
""")
    assert out == ["True"]


def test_coverage_measures_a_subprocess_as_its_pth_file_does_when_pip_installed(
        tmp_path: Path, real_env: dict[str, str]) -> None:
    """`COVERAGE_PROCESS_START` in a child's environment: coverage's `a1_coverage.pth`
    starts measuring it in a venv; carton does what that file does."""
    out = pack_and_run(tmp_path, real_env, "measured", "coverage\n", """
import os, subprocess, sys, tempfile
work = tempfile.mkdtemp()
with open(os.path.join(work, 'child.py'), 'w') as f:
    f.write('import sys\\nif len(sys.argv) > 5:\\n    print(1)\\nelse:\\n    x = 2\\n')
rc = os.path.join(work, 'coveragerc')
with open(rc, 'w') as f:
    f.write(f'[run]\\nparallel = true\\nsource = {work}\\ndata_file = {work}/.coverage\\n')
subprocess.run([sys.executable, os.path.join(work, 'child.py')],
               env={**os.environ, 'COVERAGE_PROCESS_START': rc}, check=True)
import coverage
cov = coverage.Coverage(data_file=os.path.join(work, '.coverage'))
cov.combine()
data = cov.get_data()
print([(os.path.basename(f), sorted(data.lines(f))) for f in data.measured_files()])
""")
    assert out == ["[('child.py', [1, 2, 5])]"]
