"""Member names that are safe to write on every OS: one check for wheels, the archive
and the model folder.

Apart from `wheelcheck` because the model's process runs it when it extracts a
.carton (plan.py) and should not import what checking a wheel needs.
"""

from __future__ import annotations

import re
import unicodedata

# Control characters, and what Windows cannot have in a file name.
_UNSAFE_CHAR = re.compile(r'[\x00-\x1f\x7f\\:*?"<>|]')
# Names Windows opens as devices whatever their extension (`con.py`, `aux.txt`).
_DEVICE_STEMS = frozenset({"con", "prn", "aux", "nul", "com", "lpt"})
_WINDOWS_DEVICE = re.compile(r"(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)"
                             r"( *\..*)?", re.IGNORECASE)


def name_problem(name: str) -> str | None:
    """Why a member name is unsafe to write on some OS, or None."""
    if not name or name.startswith("/"):
        return "absolute or empty path"
    if _UNSAFE_CHAR.search(name):
        return "control character, backslash, colon, or one of * ? \" < > |"
    # ASCII has no invisible or unassigned character but the controls refused above:
    # the check by character is for other names only (most wheels have thousands).
    if not name.isascii() and any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn")
                                  for c in name):
        return "invisible or unassigned character"
    for part in name.rstrip("/").split("/"):  # one pass: a wheel has thousands of names
        if part in ("", ".", ".."):
            return "empty, '.' or '..' path component"
        if part[-1] in ". ":
            return "component ending in a dot or space"
        if part[:3].lower() in _DEVICE_STEMS and _WINDOWS_DEVICE.fullmatch(part):
            return "reserved device name on Windows"
    return None
