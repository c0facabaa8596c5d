"""carton_backend.logsetup: the `carton` logger sent to stderr once, at the asked level."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from carton_backend.logsetup import LOGGER, setup_logging, verbose_from_env


@pytest.fixture(autouse=True)
def fresh_logger() -> Iterator[logging.Logger]:
    """The `carton` logger without the handler an earlier in-process build attached (it
    writes to the stderr of its time), put back as it was afterwards."""
    logger = logging.getLogger(LOGGER)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    for handler in saved[0]:
        if getattr(handler, "_carton", False):
            logger.removeHandler(handler)
    yield logger
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def own_handlers(logger: logging.Logger) -> list[logging.Handler]:
    return [h for h in logger.handlers if getattr(h, "_carton", False)]


@pytest.mark.parametrize("value", ["", "0", "false", "no", " FALSE ", "No", "off", "Off"])
def test_verbose_is_off_when_unset_empty_or_negative(value: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_VERBOSE", value)
    assert verbose_from_env() is False


@pytest.mark.parametrize("value", ["1", "true", "yes", "on", "2"])
def test_verbose_is_on_for_any_other_value(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_VERBOSE", value)
    assert verbose_from_env() is True


def test_verbose_is_off_when_the_variable_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARTON_VERBOSE", raising=False)
    assert verbose_from_env() is False


def test_messages_go_to_stderr_prefixed_with_carton(fresh_logger: logging.Logger,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(logging.INFO)
    fresh_logger.info("locked %d packages", 3)
    fresh_logger.debug("not shown at INFO")
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "carton: locked 3 packages\n")
    assert fresh_logger.propagate is False  # not printed twice by the root logger


def test_setting_up_twice_attaches_one_handler_and_takes_the_new_level(
        fresh_logger: logging.Logger, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(logging.INFO)
    setup_logging(logging.WARNING)
    assert len(own_handlers(fresh_logger)) == 1
    assert fresh_logger.level == logging.WARNING
    fresh_logger.info("hidden")
    fresh_logger.warning("shown once")
    assert capsys.readouterr().err == "carton: shown once\n"


def test_the_default_level_follows_carton_verbose(fresh_logger: logging.Logger,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_VERBOSE", "1")
    setup_logging()
    assert fresh_logger.level == logging.DEBUG
    monkeypatch.setenv("CARTON_VERBOSE", "0")
    setup_logging()
    assert fresh_logger.level == logging.INFO


def test_an_explicit_level_wins_over_carton_verbose(fresh_logger: logging.Logger,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARTON_VERBOSE", "1")
    setup_logging(logging.WARNING)
    assert fresh_logger.level == logging.WARNING


def test_a_handler_someone_else_attached_is_kept(fresh_logger: logging.Logger) -> None:
    theirs = logging.NullHandler()
    fresh_logger.addHandler(theirs)
    setup_logging(logging.INFO)
    assert theirs in fresh_logger.handlers
    assert len(own_handlers(fresh_logger)) == 1
