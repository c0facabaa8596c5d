"""The runtime's on/off environment switches (`CARTON_OFFLINE`, `CARTON_VERBOSE`, ...)."""

from __future__ import annotations

import os


def env_flag(name: str) -> bool:
    """An on/off environment switch: anything but unset, empty, 0, false, no or off is on."""
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")
