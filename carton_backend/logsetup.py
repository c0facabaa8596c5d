"""Send the `carton` logger to stderr, once, at the level the user asked for."""

from __future__ import annotations

import logging

from carton_hook.switches import env_flag

LOGGER = "carton"


def verbose_from_env() -> bool:
    """`CARTON_VERBOSE` is on, by the runtime's rule for every switch."""
    return env_flag("CARTON_VERBOSE")


def setup_logging(level: int | None = None) -> None:
    """Attach one stderr handler to the `carton` logger (idempotent).

    `level` defaults to DEBUG with `CARTON_VERBOSE=1`, INFO otherwise.
    """
    logger = logging.getLogger(LOGGER)
    if level is None:
        level = logging.DEBUG if verbose_from_env() else logging.INFO
    logger.setLevel(level)
    if not any(getattr(h, "_carton", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("carton: %(message)s"))
        handler._carton = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.propagate = False
