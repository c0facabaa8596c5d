"""The workloads: what each model locks and what its entrypoint does, and the wheels for
them, downloaded once from the package index into a wheelhouse that a loopback index
then serves (no internet in the measured part)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    requirements: tuple[str, ...]
    body: str  # the body of the entrypoint `model:main`
    expect: str  # a line its output contains


REQUESTS = Workload(
    "requests", "`import requests` (5 wheels)", ("requests",),
    "import requests\nprint('requests', requests.__version__)", "requests ")

NUMERIC = Workload(
    "numeric", "numpy + pandas, one small computation", ("numpy", "pandas"),
    "import numpy, pandas\n"
    "frame = pandas.DataFrame({'x': numpy.arange(10.0)})\n"
    "print('sum', float((frame.x * 2).sum()))", "sum 90.0")

# 30+ locked distributions; the entrypoint imports one small one.
MANY = Workload(
    "laziness", "30+ locked packages, the entrypoint imports one small one",
    ("six", "requests", "rich", "jinja2", "pyyaml", "click", "attrs", "python-dateutil",
     "pytz", "tzdata", "packaging", "tomli", "filelock", "platformdirs", "tqdm",
     "prettytable", "docutils", "pyparsing", "decorator", "toolz", "cloudpickle", "msgpack",
     "simplejson", "colorama", "typing-extensions", "wcwidth", "markdown"),
    "import six\nprint('six', six.__version__)", "six ")

SKLEARN = Workload(
    "sklearn", "scikit-learn (with scipy and pandas), one `fit`", ("scikit-learn", "pandas"),
    "import numpy, pandas\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "frame = pandas.DataFrame({'x': numpy.arange(40.0), 'y': numpy.arange(40) > 19})\n"
    "fitted = LogisticRegression().fit(frame[['x']], frame.y)\n"
    "print('score', fitted.score(frame[['x']], frame.y))", "score 1.0")

# The CPU wheel of examples/torch-model (190 MB; this machine's pip finds it on disk).
TORCH = Workload(
    "torch", "the torch CPU wheel of examples/torch-model", ("torch==2.13.0+cpu",),
    "import torch\nprint('torch', float(torch.ones(3).sum()))", "torch 3.0")

# What starting costs, apart from what the model imports: one small lock, nothing imported.
STARTUP = Workload(
    "startup", "start-up alone: one locked package, nothing imported", ("six",),
    "print('ready')", "ready")

WORKLOADS = (REQUESTS, NUMERIC, MANY, SKLEARN, TORCH, STARTUP)


def model_source(workload: Workload) -> str:
    lines = "".join(f"    {line}\n" for line in workload.body.splitlines())
    return f"def main():\n{lines}\n\nif __name__ == '__main__':\n    main()\n"


def download(workloads: tuple[Workload, ...], wheelhouse: Path, python: str) -> None:
    """Every wheel the workloads need, for `python`, from the configured index (one
    resolution per workload: their requirements need not agree with each other)."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    for workload in workloads:
        subprocess.run([python, "-m", "pip", "download", "--only-binary", ":all:", "-q",
                        "-d", str(wheelhouse), *workload.requirements], check=True)


def write_model(workload: Workload, folder: Path) -> Path:
    """A carton model folder for `workload`, locked anew by its first pack: a lock kept
    in a `--work` folder would be used as it is (the fast path), and the bench would
    measure what the carton that wrote it knew (docs/concepts.md)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(folder / ".carton", ignore_errors=True)
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["carton-backend"]\nbuild-backend = "carton_backend"\n\n'
        f'[project]\nname = "bench-{workload.name}"\nversion = "1.0"\n\n'
        '[tool.carton]\nentrypoint = "model:main"\n')
    (folder / "requirements.txt").write_text("\n".join(workload.requirements) + "\n")
    (folder / "model.py").write_text(model_source(workload))
    return folder


def pack_env(index_url: str, home: Path) -> dict[str, str]:
    """The environment to lock and pack in: the loopback index is both pip's only index
    and "PyPI" (so its wheels are recorded by URL, not bundled)."""
    return {"CARTON_PYPI_URL": index_url, "PIP_INDEX_URL": index_url,
            "PIP_CONFIG_FILE": "/dev/null", "PIP_FIND_LINKS": "", "CARTON_HOME": str(home)}


def python_tag() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"
