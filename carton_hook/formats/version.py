"""carton's version, and the `created-by` it writes into every lock and archive."""

from __future__ import annotations

__version__ = "0.1.0"

CREATED_BY = f"carton {__version__}"
