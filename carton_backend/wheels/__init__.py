"""Each resolved distribution as a checked wheel: collected (recorded or bundled), built
from source, and its shared libraries read."""
