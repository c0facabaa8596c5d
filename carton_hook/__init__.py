"""carton's runtime: run a `.carton` model with its locked wheels, imported lazily.

This package also holds the file formats that both halves of carton read and
check the same way (the lock schema, wheel validation, the archive layout).
Importing it must stay cheap: nothing third-party is imported here.
"""

__version__ = "0.1.0"

CREATED_BY = f"carton {__version__}"
