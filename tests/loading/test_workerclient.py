"""The model's side of the worker boundary: how a worker's answer, or its failure, comes
back. The worker here is a stand-in module run the way the real one is (`python -m`,
with carton's folder on its path), so each test says exactly what the worker printed."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from carton_hook import loading
from carton_hook.errors import WorkerError
from carton_hook.loading import workerclient


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """`write(source)` makes the worker module that `run_worker` starts."""
    folder = tmp_path / "standin"
    folder.mkdir()
    monkeypatch.setenv("CARTON_RUNTIME_DEPS", str(folder))  # on the worker's path
    monkeypatch.setattr(workerclient, "WORKER_MODULE", "standin_worker")

    def write(source: str) -> None:
        (folder / "standin_worker.py").write_text(textwrap.dedent(source))

    return write


def test_what_the_worker_prints_is_the_answer(stand_in: Callable[[str], None]) -> None:
    stand_in("""
        import sys
        print("answer:", *sys.argv[1:])
    """)
    assert workerclient.run_worker("install", "x") == "answer: install x\n"


def test_a_failure_comes_back_with_its_kind(stand_in: Callable[[str], None],
                                            capfd: pytest.CaptureFixture[str]) -> None:
    stand_in("""
        import json, sys
        print("carton: warning: said on the way", file=sys.stderr)
        print(json.dumps({"error": "model.carton: no lock section for here",
                          "kind": "no-environment"}), file=sys.stderr)
        sys.exit(3)
    """)
    with pytest.raises(WorkerError) as caught:
        workerclient.run_worker("plan")
    assert (str(caught.value), caught.value.kind) == (
        "model.carton: no lock section for here", "no-environment")
    assert capfd.readouterr().err == "carton: warning: said on the way\n"  # passed on


def test_a_worker_that_crashes_is_a_crash_with_its_last_line(
        stand_in: Callable[[str], None], capfd: pytest.CaptureFixture[str]) -> None:
    stand_in("""
        raise SystemExit("something went badly wrong")
    """)
    with pytest.raises(WorkerError) as caught:
        workerclient.run_worker("plan")
    assert (str(caught.value), caught.value.kind) == ("something went badly wrong", "crash")
    assert "something went badly wrong" in capfd.readouterr().err


def test_the_worker_runs_with_the_callers_interpreter_and_carton_on_its_path(
        stand_in: Callable[[str], None]) -> None:
    stand_in("""
        import sys, carton_hook
        print(sys.executable)
        print(carton_hook.__file__)
    """)
    python, hook = workerclient.run_worker().splitlines()
    assert python == loading.WORKER_PYTHON
    assert Path(hook).parent.parent == Path(workerclient._PACKAGE_PARENT)
