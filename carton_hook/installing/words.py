"""What a first run's model process and its plan worker say to each other, beside the
progress line's words (progress.py: WAITING, GOING_ON, QUIET).

On the worker's stdin, once the model's process has extracted a .carton while the
worker started (loading/plan.py): MODEL_OPENED, or PLAN_WRITTEN where it has also
selected the section and written the plan (loading/selection.py), followed by a space
and the names the model's source imports as a JSON array, where it read them
(planning/predict.py): the worker then need not read them again. On the worker's
stdout, one JSON object a line: `{READY: [SHA256, ...]}` when the model's process may go
on (the wheels the worker is still installing), `{DOWNLOADED: [SHA256, PATH]}` once
each of those is downloaded and its sha256 checked (the model's process, if it waits,
compiles from that file: loading/earlycode.py), `{INSTALLED: SHA256}` as each is
published (the model's process may be waiting for it), and
`{PREFETCH_FAILED: {SHA256: why}}` for those it could not install. In the worker's
environment, PLAN_LOCK_FD names its copy of the plan's lock descriptor, which it lets go
of before it compiles ahead, and PROGRESS_FD the copy of the model's stderr it draws
progress on (progress.py).
"""

MODEL_OPENED = "model-opened"
PLAN_WRITTEN = "plan-written"
READY = "ready"
INSTALLED = "installed"
DOWNLOADED = "downloaded"
PREFETCH_FAILED = "prefetch-failed"
PLAN_LOCK_FD = "CARTON_PLAN_LOCK_FD"
PROGRESS_FD = "CARTON_PROGRESS_FD"
