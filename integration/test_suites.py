"""Other projects' own test suites, run under carton and in a plain venv with the same
pins: every test must end the same way in both (real PyPI, real pip, real pytest).

Each suite is a model folder: `suites_runner.py` as its entrypoint, a requirements.txt
with the project and its test dependencies, and in `suite/` whatever the tests need from
the project's sdist (its test folder, its pytest configuration, data). Tests that ship
inside the wheel run with `pytest --pyargs`, which reads `find_spec(...).origin` of a
package never imported before. The carton is locked and packed with
`python -m carton_backend pack`; the venv gets exactly the versions of the carton's lock
(`pip install --no-deps`). The table of results is printed at the end of the session.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .conftest import SUITE_ROW, carton

HERE = Path(__file__).resolve().parent
ACTIVE = f"{sys.version_info.major}.{sys.version_info.minor}"


@dataclass(frozen=True)
class Suite:
    name: str
    kind: str                            # what it exercises in carton
    requirements: tuple[str, ...]
    args: tuple[str, ...]                # pytest's, run from the suite folder
    sdist: str | None = None             # "name==version" whose sdist provides `take`
    take: tuple[str, ...] = ()           # paths inside that sdist, copied to the suite
    env: dict[str, str] = field(default_factory=dict)  # "{here}": the suite folder
    python: str = "3.11"                 # the integration session it runs in
    executable: bool = False             # run as `python model.carton`


PYTEST = "pytest==9.2.0"
SUITES = [
    Suite("msgpack", "C extension, on a Python other than 3.11",
          ("msgpack==1.2.4", PYTEST), ("test",), sdist="msgpack==1.2.4", take=("test",),
          python="3.12"),
    Suite("pytest-mock", "plugins found through entry points (pytest11); "
          "`sys.executable -m pytest` children",
          ("pytest-mock==3.17.0", "pytest-asyncio==1.5.0", "mock==5.2.0", PYTEST),
          ("tests",), sdist="pytest-mock==3.17.0", take=("tests", "tox.ini")),
    Suite("jsonschema", "data read with importlib.resources (jsonschema-specifications); "
          "`sys.executable -m jsonschema` children; C extension (rpds-py); --pyargs",
          ("jsonschema==4.26.0", "jsonpath-ng==1.16.0", PYTEST),
          ("--pyargs", "jsonschema.tests"), sdist="jsonschema==4.26.0", take=("json",),
          env={"JSON_SCHEMA_TEST_SUITE": "{here}/json"}),
    Suite("pyflakes", "`sys.executable -mpyflakes` children; --pyargs; "
          "as an executable carton", ("pyflakes==4.1.0", PYTEST), ("--pyargs", "pyflakes.test"),
          executable=True),
    Suite("zope.interface", "namespace package across wheels (zope.interface, "
          "zope.testing); C extension; --pyargs",
          ("zope.interface==8.7", "zope.testing==6.2", PYTEST), ("--pyargs", "zope.interface")),
    Suite("importlib_resources", "resources read through the loaders of a locked package "
          "and of packages its tests put on sys.path; namespace package across wheels "
          "(jaraco.*); --pyargs",
          ("importlib_resources==7.1.0", "zipp==4.1.2", "jaraco.test==5.7.0", PYTEST),
          ("--pyargs", "importlib_resources.tests"),
          python="3.13"),  # its tests need 3.12's test.support (isolated_modules)
]


@pytest.mark.parametrize("suite", SUITES, ids=[s.name for s in SUITES])
def test_suite_ends_as_in_a_venv(suite: Suite, tmp_path: Path, real_env: dict[str, str],
                                 record_property: Callable[[str, object], None]) -> None:
    if suite.python != ACTIVE:
        pytest.skip(f"runs in the {suite.python} session")
    env = {**real_env, "PYTHONDONTWRITEBYTECODE": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    model = _model_folder(suite, tmp_path, env)
    proc = carton(env, "pack", model)
    assert proc.returncode == 0, proc.stderr
    (archive,) = (model / "dist").glob("*.carton")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    pins = _locked_pins(model)
    _run([python, "-m", "pip", "install", "--quiet", "--no-deps", *pins], env)

    in_venv = _outcomes([python, str(model / "suites_runner.py")], tmp_path / "venv.json", env)
    hook = ([sys.executable, str(archive)] if suite.executable
            else [sys.executable, "-m", "carton_hook", str(archive)])
    in_carton = _outcomes(hook, tmp_path / "carton.json", env)

    counts: dict[str, int] = {}
    for outcome in in_venv["outcomes"].values():
        counts[outcome] = counts.get(outcome, 0) + 1
    different = sorted(k for k in in_venv["outcomes"].keys() | in_carton["outcomes"].keys()
                       if in_venv["outcomes"].get(k) != in_carton["outcomes"].get(k))
    form = "python model.carton" if suite.executable else "python -m carton_hook"
    summary = ", ".join(f"{n} {o}" for o, n in sorted(counts.items()))
    record_property(SUITE_ROW, (SUITES.index(suite), f"| {suite.name} | {suite.kind} | "
                                f"{ACTIVE} | {form} | {summary} | {len(different)} |"))
    assert in_venv["outcomes"], "the venv run collected no tests"
    assert (in_carton["exit"], different) == (in_venv["exit"], []), [
        (k, in_venv["outcomes"].get(k), in_carton["outcomes"].get(k)) for k in different[:20]]


def _model_folder(suite: Suite, tmp_path: Path, env: dict[str, str]) -> Path:
    model = tmp_path / "model"
    (model / "suite").mkdir(parents=True)
    name = suite.name.replace(".", "-")
    (model / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["carton-backend"]\nbuild-backend = "carton_backend"\n\n'
        f'[project]\nname = "suite-{name}"\nversion = "1.0"\n\n'
        '[tool.carton]\nentrypoint = "suites_runner:main"\n')
    (model / "requirements.txt").write_text("".join(f"{r}\n" for r in suite.requirements))
    shutil.copy(HERE / "suites_runner.py", model / "suites_runner.py")
    inifile = next((name for name in ("pytest.ini", "tox.ini", "setup.cfg", "pyproject.toml")
                    if name in suite.take), "pytest.ini")
    if inifile not in suite.take:
        (model / "suite" / inifile).write_text("[pytest]\n")
    (model / "suite" / "suite.json").write_text(json.dumps(
        {"args": suite.args, "env": suite.env, "inifile": inifile}))
    if suite.sdist:
        download = tmp_path / "sdist"
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
              "--no-binary", ":all:", "--dest", str(download), suite.sdist], env)
        (archive,) = download.glob("*.tar.gz")
        with tarfile.open(archive) as tar:
            tar.extractall(download, filter="data")
        (root,) = (p for p in download.iterdir() if p.is_dir())
        for path in suite.take:
            source = root / path
            if source.is_dir():
                shutil.copytree(source, model / "suite" / path)
            else:
                shutil.copy(source, model / "suite" / path)
    return model


def _locked_pins(model: Path) -> list[str]:
    lock = json.loads((model / ".carton" / "carton.lock").read_text())
    (section,) = lock["environments"]
    return [f"{p['name']}=={p['version']}" for p in section["packages"]]


def _outcomes(argv: list[str], out: Path, env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([*argv, str(out)], env=env, capture_output=True, text=True,
                          check=False, timeout=600)
    assert proc.returncode == 0 and out.exists(), (argv, proc.stdout[-3000:],
                                                    proc.stderr[-3000:])
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _run(argv: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, (argv, proc.stderr[-3000:])

