"""The settings that make an executable carton the Python of an engine's workers.

    conf, env = carton_hook.spark_settings("dist/model-1.0.carton")
    os.environ.update(env)                 # local modes read PYSPARK_PYTHON only
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)

    argv = carton_hook.dask_worker_command("dist/model-1.0.carton", "tcp://scheduler:8786")

See docs/distributed.md for the recipes (spark-submit, a SparkSession, Dask).
"""

from __future__ import annotations

import os


def spark_settings(carton: str | os.PathLike[str], *, home: str | None = None,
                   pack_at_load: bool = False) -> tuple[dict[str, str], dict[str, str]]:
    """(Spark configuration, environment of the driver process) for running `carton`
    as the executors' Python: shipped with `spark.files`, started as `./NAME` in each
    executor's working folder, in interpreter mode. `home` sets the executors'
    `CARTON_HOME` (default: theirs, or a fallback where it is not writable). Packing at
    load time is off unless asked for, so that an executor whose Python the lock has no
    section for fails its task at once, with the reason, instead of trying to lock."""
    path = os.path.abspath(os.fspath(carton))
    local = f"./{os.path.basename(path)}"
    conf = {
        "spark.files": path,
        "spark.pyspark.python": local,
        "spark.executorEnv.CARTON_INTERPRETER": "1",
    }
    if not pack_at_load:
        conf["spark.executorEnv.CARTON_NO_PACK"] = "1"
    if home is not None:
        conf["spark.executorEnv.CARTON_HOME"] = home
    return conf, {"PYSPARK_PYTHON": local}


def dask_worker_command(carton: str | os.PathLike[str], scheduler: str,
                        *args: str) -> list[str]:
    """The command that starts a Dask worker with `carton` as its Python (run it with
    `CARTON_INTERPRETER=1` in its environment; the lock must hold `distributed`)."""
    return [os.path.abspath(os.fspath(carton)), "-m", "distributed.cli.dask_worker",
            scheduler, *args]
