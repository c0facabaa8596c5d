"""carton_hook/installing/words.py: the words a first run's model process and its plan
worker exchange are told apart from each other and from the progress line's, which
share the same pipes."""

from __future__ import annotations

import json

from carton_hook.installing import progress, words
from carton_hook.loading import workerclient


def test_the_words_on_the_workers_stdin_are_distinct_single_lines() -> None:
    """The worker reads the first line as the plan step's word, and the progress
    listener the lines after it: none may be taken for another."""
    said = [words.MODEL_OPENED, words.PLAN_WRITTEN, progress.WAITING, progress.GOING_ON]
    assert len(set(said)) == len(said)
    assert all(word and "\n" not in word and word == word.strip() for word in said)


def test_the_lines_on_the_workers_stdout_are_told_apart_by_how_they_start() -> None:
    """The model's process reads each line by its start: the ready line, a failed
    prefetch, the progress line's reply (QUIET)."""
    ready = json.dumps({words.READY: ["a" * 64]})
    failed = json.dumps({words.PREFETCH_FAILED: {"a" * 64: "why"}})
    assert ready.startswith(workerclient._READY_LINE)
    assert failed.startswith(workerclient._FAILED_LINE)
    assert not failed.startswith(workerclient._READY_LINE)
    assert not ready.startswith(workerclient._FAILED_LINE)
    for line in (ready, failed):
        assert line.strip() != progress.QUIET and "\n" not in line
    assert not progress.QUIET.startswith((workerclient._READY_LINE, workerclient._FAILED_LINE))
