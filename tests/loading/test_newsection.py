"""loading/newsection.py: `pack_for_here`, where a model is locked for this interpreter (a
model folder in place, a carton in a copy made once) and how a lock that fails is said.
(A lock that succeeds, with pip and an index, runs end to end in e2e/test_main.py.)"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from carton_backend.config import load_config
from carton_backend.packing.pack import write_carton
from carton_hook import loading
from carton_hook.cache.layout import is_published
from carton_hook.errors import CartonError, WorkerError
from carton_hook.formats.lockfile import LOCK_PATH, load_lock
from carton_hook.loading.newsection import pack_for_here
from carton_hook.loading.plan import plan_key

from ..lockfactory import ELSEWHERE, lock_section, model_folder

# Found before anything else is read: `carton_backend lock` fails at once, for its reason.
UNLOCKABLE = "-r missing.txt\n"


# Logs each worker `derive` command (the copy of a carton's model folder).
LOG_DERIVE = """
import sys
if "carton_hook.installing.worker" in sys.orig_argv and "derive" in sys.orig_argv:
    with open({log!r}, "a") as f:
        f.write("derive\\n")
"""


def foreign_folder(tmp_path: Path) -> Path:
    """A model folder whose lock has a section for another platform only."""
    folder = model_folder(tmp_path, lock_section("there", ELSEWHERE))
    (folder / "pyproject.toml").write_text(
        '[project]\nname = "demo-model"\nversion = "0.1.0"\n'
        '[tool.carton]\nentrypoint = "model:main"\nexecutable = false\n')
    (folder / "requirements.txt").write_text(UNLOCKABLE)
    return folder


def missing(where: Path) -> WorkerError:
    return WorkerError(f"{where}: no lock section for this interpreter (the lock has: there)",
                       "no-environment")


def silent_python(tmp_path: Path) -> Path:
    """An interpreter that writes its arguments to `argv` and exits 3 without a word."""
    python = tmp_path / "silent-python"
    python.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path / "argv"}\nexit 3\n')
    python.chmod(0o755)
    return python


def reason(exc: BaseException, target: Path) -> str:
    """What follows `locking TARGET for this interpreter failed: ` in a one-line error."""
    message = str(exc)
    assert "\n" not in message
    head = f"locking {target} for this interpreter failed: "
    assert message.startswith(head), message
    return message[len(head):]


class Said(logging.Handler):
    """What the `carton` logger says, whatever handlers the process has."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.levelname}: {record.getMessage()}")


@pytest.fixture
def said() -> Iterator[Said]:
    handler = Said()
    logging.getLogger("carton").addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger("carton").removeHandler(handler)


def test_a_model_folder_is_locked_in_place_and_a_failure_gives_the_lock_s_reason(
        tmp_path: Path, use_hermetic_env: None, said: Said) -> None:
    folder = foreign_folder(tmp_path)
    lock = (folder / LOCK_PATH).read_bytes()
    home = os.environ["CARTON_HOME"]
    with pytest.raises(CartonError) as caught:
        pack_for_here(str(folder), home, missing(folder))
    assert reason(caught.value, folder).endswith(
        f"{folder / 'missing.txt'}: requirements file not found")
    assert said.messages == [f"WARNING: {missing(folder)}; locking {folder} for this "
                             "interpreter now (python -m carton_backend lock)"]
    assert (folder / LOCK_PATH).read_bytes() == lock
    assert not Path(home, "models").exists()  # no copy of a model folder


def test_the_lock_s_reason_is_given_without_its_own_prefix(
        tmp_path: Path, use_hermetic_env: None) -> None:
    folder = foreign_folder(tmp_path)
    with pytest.raises(CartonError) as caught:
        pack_for_here(str(folder), os.environ["CARTON_HOME"], missing(folder))
    assert not reason(caught.value, folder).startswith("carton: error: ")


def test_a_lock_that_fails_without_a_word_is_named_by_its_exit_status(
        tmp_path: Path, use_hermetic_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The build half runs as `WORKER_PYTHON -m carton_backend lock TARGET`: the
    interpreter with carton's own dependencies, never imported here."""
    folder = foreign_folder(tmp_path)
    monkeypatch.setattr(loading, "WORKER_PYTHON", str(silent_python(tmp_path)))
    with pytest.raises(CartonError) as caught:
        pack_for_here(str(folder), os.environ["CARTON_HOME"], missing(folder))
    assert reason(caught.value, folder) == "exit status 3"
    assert (tmp_path / "argv").read_text().splitlines() == [
        "-m", "carton_backend", "lock", str(folder)]


def test_a_carton_is_locked_in_a_copy_made_once(
        tmp_path: Path, use_hermetic_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = foreign_folder(tmp_path)
    carton = write_carton(load_config(folder), load_lock(folder / LOCK_PATH), tmp_path / "dist")
    packed_bytes = carton.read_bytes()
    log = tmp_path / "derived.log"
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(LOG_DERIVE.format(log=str(log)))
    monkeypatch.setenv("PYTHONPATH", str(site))
    home = os.environ["CARTON_HOME"]
    copy = Path(home, "models", f"packed-{plan_key(str(carton))}")
    with pytest.raises(CartonError) as caught:
        pack_for_here(str(carton), home, missing(carton))
    assert reason(caught.value, copy).endswith(
        f"{copy / 'missing.txt'}: requirements file not found")
    assert is_published(copy) and (copy / "model.py").is_file()
    assert carton.read_bytes() == packed_bytes
    (copy / "edited-after-the-copy").write_text("")
    with pytest.raises(CartonError):
        pack_for_here(str(carton), home, missing(carton))
    assert (copy / "edited-after-the-copy").exists()
    assert log.read_text() == "derive\n"  # the published copy is locked again as it is

