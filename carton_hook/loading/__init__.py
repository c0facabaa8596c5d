"""Run a model in this process: its plan, the import finder, isolation, subprocesses, the
entrypoint."""
