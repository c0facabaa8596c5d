"""carton_hook/log.py: the `carton` logger's lines on stderr, its level from
CARTON_VERBOSE / CARTON_QUIET, and an application's own logging setup left in charge.

Each test runs a fresh interpreter: the logger is process-wide state, and pytest's own
handlers on the root logger would hide the default setup."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

LOG_ALL = """
from carton_hook.log import logger
log = logger()
log.debug("a debug note")
log.info("an info note")
log.warning("the lock is %s", "stale")
log.error("an error line")
"""


def run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CARTON_")}
    return subprocess.run([sys.executable, "-c", code], env={**clean, **env},
                          capture_output=True, text=True, check=False)


def test_a_warning_is_one_prefixed_line_on_stderr() -> None:
    proc = run('from carton_hook.log import logger\nlogger().warning("%s: stale", "m.carton")')
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        0, "", "carton: warning: m.carton: stale\n")


@pytest.mark.parametrize(("env", "shown"), [
    ({}, ["carton: an info note", "carton: warning: the lock is stale",
          "carton: error: an error line"]),
    ({"CARTON_VERBOSE": "1"}, ["carton: a debug note", "carton: an info note",
                               "carton: warning: the lock is stale",
                               "carton: error: an error line"]),
    ({"CARTON_QUIET": "1"}, ["carton: warning: the lock is stale",
                             "carton: error: an error line"]),
    ({"CARTON_VERBOSE": "1", "CARTON_QUIET": "1"}, ["carton: a debug note",
                                                     "carton: an info note",
                                                     "carton: warning: the lock is stale",
                                                     "carton: error: an error line"]),
    ({"CARTON_VERBOSE": "0", "CARTON_QUIET": "no"}, ["carton: an info note",
                                                      "carton: warning: the lock is stale",
                                                      "carton: error: an error line"]),
], ids=["default", "verbose", "quiet", "verbose-wins", "switched-off"])
def test_the_level_follows_verbose_and_quiet(env: dict[str, str], shown: list[str]) -> None:
    proc = run(LOG_ALL, **env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == shown


def test_an_application_that_configured_logging_gets_the_records_through_its_handlers() -> None:
    code = ('import logging\nlogging.basicConfig(format="%(name)s|%(levelname)s|%(message)s")\n'
            + LOG_ALL)
    proc = run(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["carton|INFO|an info note",
                                        "carton|WARNING|the lock is stale",
                                        "carton|ERROR|an error line"]


def test_a_level_the_application_chose_is_kept() -> None:
    code = 'import logging\nlogging.getLogger("carton").setLevel(logging.ERROR)\n' + LOG_ALL
    proc = run(code, CARTON_VERBOSE="1")
    assert proc.stderr.splitlines() == ["carton: error: an error line"]


def test_asking_twice_gives_the_same_logger_with_one_handler() -> None:
    code = ("import logging\nfrom carton_hook.log import LOGGER, logger\n"
            "first, second = logger(), logger()\n"
            "assert first is second is logging.getLogger(LOGGER), (first, second)\n"
            "assert LOGGER == 'carton'\n"
            "assert len(first.handlers) == 1 and not first.propagate\n"
            "second.warning('once')\n")
    proc = run(code)
    assert (proc.returncode, proc.stderr) == (0, "carton: warning: once\n")


def test_the_level_is_chosen_when_the_logger_is_first_asked_for() -> None:
    """The switches set later (by an option parsed after the first warning) do not change
    it: `--verbose` sets CARTON_VERBOSE before anything logs."""
    code = ("import os\nfrom carton_hook.log import logger\nlogger()\n"
            "os.environ['CARTON_VERBOSE'] = '1'\nlogger().debug('hidden')\n"
            "logger().info('shown')\n")
    assert run(code).stderr == "carton: shown\n"
