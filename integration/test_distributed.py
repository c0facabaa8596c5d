"""A carton as the Python of Spark's executors and Dask's workers, with exactly its
locked packages (`nox -s distributed`: pyspark from PyPI, Java 17).

The carton locks numpy 1.26.4 and tabulate 0.8.10, older than anything the host has;
every answer from a worker must come from them, from carton's cache, with no host
site-packages on the worker's path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import carton as carton_cli

pytestmark = pytest.mark.distributed

LOCKED = {"numpy": "1.26.4", "tabulate": "0.8.10"}
MODEL = '''import os, sys


def versions(_=None):
    import numpy, tabulate
    return {"numpy": numpy.__version__, "tabulate": tabulate.__version__,
            "executable": sys.executable, "pid": os.getpid(),
            "site": [p for p in sys.path if "site-packages" in p]}


def main():
    print(versions())
'''


def write_model(folder: Path, requirements: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["carton-backend"]\nbuild-backend = "carton_backend"\n'
        '[project]\nname = "dist-model"\nversion = "1.0"\n'
        '[tool.carton]\nentrypoint = "dist_model:main"\n')
    (folder / "requirements.txt").write_text(requirements)
    (folder / "dist_model.py").write_text(MODEL)
    return folder


def pack(folder: Path, env: dict[str, str]) -> Path:
    proc = carton_cli(env, "pack", folder)
    assert proc.returncode == 0, proc.stderr
    (archive,) = (folder / "dist").glob("*.carton")
    return archive


def entries(home: Path) -> dict[str, float]:
    return {p.parent.name: p.stat().st_mtime
            for p in home.glob("pythonpackages/py*/*/.carton-complete")}


# -- Spark -------------------------------------------------------------------------------


@pytest.fixture
def spark_env(tmp_path: Path, real_env: dict[str, str]) -> Iterator[dict[str, str]]:
    pytest.importorskip("pyspark", reason="needs pyspark: nox -s distributed")
    if shutil.which("java") is None:
        pytest.skip("needs Java 17 for Spark")
    yield real_env


def spark_session(archive: Path, home: Path) -> Any:
    from pyspark.sql import SparkSession

    import carton_hook

    conf, env = carton_hook.spark_settings(archive, home=str(home))
    os.environ.update(env)  # local modes read PYSPARK_PYTHON, not spark.pyspark.python
    builder = SparkSession.builder.master("local-cluster[2,1,1024]")
    for key, value in {**conf, "spark.task.maxFailures": "1",
                       "spark.ui.enabled": "false"}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def test_spark_executors_run_the_locked_packages(tmp_path: Path,
                                                 spark_env: dict[str, str]) -> None:
    folder = write_model(tmp_path / "model", "numpy==1.26.4\ntabulate==0.8.10\n")
    archive = pack(folder, spark_env)
    home = tmp_path / "executor-home"
    spark = spark_session(archive, home)
    try:
        sc = spark.sparkContext

        def probe(i: int) -> dict[str, Any]:  # pickled by value
            import sys

            import numpy
            import pyspark
            import tabulate
            return {"numpy": numpy.__version__, "tabulate": tabulate.__version__,
                    "executable": sys.executable, "pyspark": pyspark.__file__,
                    "site": [p for p in sys.path if "site-packages" in p]}

        rows = sc.parallelize(range(4), 2).map(probe).collect()
        for row in rows:
            assert {k: row[k] for k in LOCKED} == LOCKED
            assert row["executable"].startswith(str(home))
            assert ".zip" in row["pyspark"]  # Spark's own pyspark, from its zip
            assert all("/pyspark/" in p for p in row["site"]), row["site"]
        # A function of the model's own module, pickled by reference.
        sys.path.insert(0, str(folder))
        try:
            import dist_model
        finally:
            sys.path.remove(str(folder))
        by_ref = sc.parallelize(range(2), 2).map(dist_model.versions).collect()
        assert {r["numpy"] for r in by_ref} == {"1.26.4"}
        from pyspark.sql.functions import udf

        both = udf(lambda i: __import__("numpy").__version__ + " "
                   + __import__("tabulate").__version__)
        assert {r[0] for r in spark.range(4).select(both("id")).collect()} == {"1.26.4 0.8.10"}
        first = entries(home)
        assert len(first) == 2  # numpy and tabulate: one entry each for both executors
        assert sc.parallelize(range(4), 2).map(probe).count() == 4  # a second job
        assert entries(home) == first  # nothing new downloaded or unpacked
    finally:
        spark.stop()
        sys.modules.pop("dist_model", None)


def test_spark_fails_fast_on_a_python_the_lock_has_no_section_for(
        tmp_path: Path, spark_env: dict[str, str]) -> None:
    from py4j.protocol import Py4JJavaError

    folder = write_model(tmp_path / "model", "tabulate==0.8.10\n")
    archive = pack(folder, spark_env)
    other = _only_for_another_python(folder, archive)
    spark = spark_session(other, tmp_path / "executor-home")
    started = time.monotonic()
    try:
        with pytest.raises(Py4JJavaError) as failure:
            spark.sparkContext.parallelize(range(2), 2).map(lambda x: x).collect()
    finally:
        spark.stop()
    message = str(failure.value)
    assert f"{other.name}: no lock section for CPython {sys.version_info[0]}." in message
    assert "the lock has: cp39-" in message
    assert time.monotonic() - started < 180


def _only_for_another_python(folder: Path, archive: Path) -> Path:
    """The same carton, its lock claiming only Python 3.9 (what a carton built for
    another cluster looks like)."""
    from carton_backend.config import load_config
    from carton_backend.packing.pack import write_carton
    from carton_hook.formats.lockfile import parse_lock

    lock_path = folder / ".carton" / "carton.lock"
    data = json.loads(lock_path.read_text())
    for section in data["environments"]:
        section["id"] = "cp39-linux-x86_64"
        section["marker"] = section["marker"].replace(
            f"python_version == '{sys.version_info[0]}.{sys.version_info[1]}'",
            "python_version == '3.9'")
    raw = json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"
    lock_path.write_bytes(raw)
    out = write_carton(load_config(folder), parse_lock(raw, str(lock_path)),
                       archive.parent / "other")
    return out


# -- Dask --------------------------------------------------------------------------------


def test_dask_workers_run_the_locked_packages(tmp_path: Path,
                                              real_env: dict[str, str]) -> None:
    pytest.importorskip("distributed", reason="needs distributed: nox -s distributed")
    from importlib.metadata import version

    from distributed import Client, LocalCluster

    # The packages client, scheduler and workers must agree on: the host's versions.
    shared = ["dask", "distributed", "msgpack", "cloudpickle", "tornado", "toolz"]
    requirements = "".join(f"{name}=={version(name)}\n" for name in shared)
    folder = write_model(tmp_path / "model",
                         requirements + "numpy==1.26.4\ntabulate==0.8.10\n")
    archive = pack(folder, real_env)
    home = tmp_path / "worker-home"
    env = {**real_env, "CARTON_INTERPRETER": "1", "CARTON_HOME": str(home)}
    cluster = LocalCluster(n_workers=0, processes=False, protocol="tcp", host="127.0.0.1",
                           dashboard_address=None)
    import carton_hook

    # With the interpreter that runs the client: get_versions(check=True) wants one Python.
    command = [sys.executable, *carton_hook.dask_worker_command(
        archive, cluster.scheduler_address, "--nthreads", "1", "--no-dashboard")]
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL) for _ in range(2)]
    try:
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=180)
            report = client.get_versions(check=True)
            for info in report["workers"].values():
                assert info["packages"]["numpy"] == "1.26.4"
                assert info["packages"]["distributed"] == version("distributed")
            def probe(_: int) -> dict[str, Any]:  # pickled by value
                import os
                import sys

                import numpy
                import tabulate
                return {"numpy": numpy.__version__, "tabulate": tabulate.__version__,
                        "executable": sys.executable, "pid": os.getpid(),
                        "site": [p for p in sys.path if "site-packages" in p]}

            rows = client.gather([client.submit(probe, i, pure=False) for i in range(4)])
            for row in rows:
                assert {k: row[k] for k in LOCKED} == LOCKED
                assert row["executable"].startswith(str(home)) and row["site"] == []
            first = entries(home)
            assert client.gather([client.submit(probe, i, pure=False) for i in range(4)])
            assert entries(home) == first  # a second job: nothing new installed
        # A worker whose Python the lock has no section for: gone at once, saying why.
        other = _only_for_another_python(folder, archive)
        command[1] = str(other)
        started = time.monotonic()
        wrong = subprocess.run(command, env={**env, "CARTON_NO_PACK": "1"},
                               capture_output=True, text=True, timeout=120, check=False)
        assert wrong.returncode == 1 and time.monotonic() - started < 120
        assert f"{other}: no lock section for CPython {sys.version_info[0]}." in wrong.stderr
        assert "the lock has: cp39-" in wrong.stderr and "Traceback" not in wrong.stderr
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
        cluster.close()

