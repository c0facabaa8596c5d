"""The runtime's `carton` logger: warnings and notes on stderr, as `carton: warning: ...`.

Only cold paths use it (logging costs milliseconds to import). An application that
configured logging itself gets the records through its own handlers instead. The level
follows `--quiet` / `--verbose`, which set `CARTON_QUIET` / `CARTON_VERBOSE` so that the
worker and the model's subprocesses say as much as their parent.
"""

from __future__ import annotations

import logging

from carton_hook.switches import env_flag

LOGGER = "carton"


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"carton: {record.levelname.lower()}: {message}"
        return f"carton: {message}"


def logger() -> logging.Logger:
    """The `carton` logger, with a stderr handler unless the application has its own."""
    log = logging.getLogger(LOGGER)
    if not getattr(log, "_carton_ready", False):
        log._carton_ready = True  # type: ignore[attr-defined]
        if not logging.getLogger().handlers:
            handler = logging.StreamHandler()
            handler.setFormatter(_Formatter())
            log.addHandler(handler)
            log.propagate = False
        if log.level == logging.NOTSET:
            log.setLevel(logging.DEBUG if env_flag("CARTON_VERBOSE")
                         else logging.WARNING if env_flag("CARTON_QUIET") else logging.INFO)
    return log
