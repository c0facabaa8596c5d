"""`python -m carton_backend`."""

import sys

from carton_backend.cli import main

sys.exit(main())
