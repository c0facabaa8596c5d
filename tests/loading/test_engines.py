"""The settings that make a carton an engine's worker Python (the clusters themselves
run in integration/test_distributed.py, `nox -s distributed`)."""

from __future__ import annotations

from pathlib import Path

import carton_hook


def test_spark_settings_ship_the_carton_and_start_it_in_interpreter_mode(
        tmp_path: Path) -> None:
    carton = tmp_path / "dist" / "model-1.0.carton"
    conf, env = carton_hook.spark_settings(carton, home="/scratch/carton")
    assert conf == {
        "spark.files": str(carton),
        "spark.pyspark.python": "./model-1.0.carton",
        "spark.executorEnv.CARTON_INTERPRETER": "1",
        "spark.executorEnv.CARTON_NO_PACK": "1",
        "spark.executorEnv.CARTON_HOME": "/scratch/carton",
    }
    assert env == {"PYSPARK_PYTHON": "./model-1.0.carton"}
    conf, _ = carton_hook.spark_settings("model.carton", pack_at_load=True)
    assert "spark.executorEnv.CARTON_NO_PACK" not in conf
    assert "spark.executorEnv.CARTON_HOME" not in conf
    assert conf["spark.files"] == str(Path("model.carton").absolute())


def test_dask_worker_command() -> None:
    argv = carton_hook.dask_worker_command("model.carton", "tcp://10.0.0.1:8786", "--nthreads",
                                           "2")
    assert argv == [str(Path("model.carton").absolute()), "-m", "distributed.cli.dask_worker",
                    "tcp://10.0.0.1:8786", "--nthreads", "2"]
